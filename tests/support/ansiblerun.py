# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Running our modules and playbooks through Ansible itself, as users do (AnsiballZ, module_utils packaging)."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout
BIN = os.path.dirname(sys.executable)


def ansible_env(tmp_path) -> dict:
    env = dict(os.environ)
    env.update(ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_DEPRECATION_WARNINGS="0")
    return env


# keys Ansible itself adds to any module's result, documented by Ansible rather than by each module
STANDARD_KEYS = {"changed", "failed", "msg", "invocation", "warnings", "deprecations", "exception", "skipped",
                 "ansible_facts", "_ansible_no_log", "_ansible_verbose_always", "_ansible_verbose_override",
                 "ansible_job_id", "started", "finished", "results_file", "module_stdout", "module_stderr", "rc",
                 "skip_reason", "diff"}
# what AnsibleModule.exit_json adds about the file named by a result's ``path`` or ``dest`` (add_path_info)
PATH_INFO_KEYS = {"uid", "gid", "owner", "group", "mode", "state", "size", "secontext"}


def return_doc(module: str) -> dict:
    """The RETURN block of one of our modules (``ovatool.vmware.NAME``), parsed."""
    path = os.path.join(ROOT, "plugins", "modules", module.rsplit(".", 1)[-1] + ".py")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "RETURN":
            return yaml.safe_load(node.value.value) or {}
    raise AssertionError(f"{path} has no RETURN")


def assigned(path: str, name: str) -> str:
    """The string assigned to ``name`` in a module, or in the class of a doc fragment."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return node.value.value
    raise AssertionError(f"{path} has no {name}")


def module_doc(module: str, block: str = "DOCUMENTATION") -> dict:
    """A module's documentation block, with the options of this collection's doc fragments merged in."""
    doc = yaml.safe_load(assigned(os.path.join(ROOT, "plugins", "modules", f"{module}.py"), block))
    for fragment in doc.get("extends_documentation_fragment", []) if block == "DOCUMENTATION" else []:
        if fragment.startswith("ovatool.vmware."):
            name, _dot, variant = fragment[len("ovatool.vmware."):].partition(".")
            path = os.path.join(ROOT, "plugins", "doc_fragments", f"{name}.py")
            options = yaml.safe_load(assigned(path, variant.upper() or "DOCUMENTATION")).get("options", {})
            doc["options"] = {**options, **doc.get("options", {})}
    return doc


def undocumented(result: dict, doc: dict, where: str = "") -> list:
    """The keys of ``result`` (recursively, where RETURN says what a dict or list of dicts contains) that
    ``doc`` does not describe."""
    missing = []
    ansible_adds = STANDARD_KEYS | (PATH_INFO_KEYS if "path" in result or "dest" in result else set())
    for key, value in result.items():
        if not where and (key in ansible_adds or key.startswith("_")):
            continue
        if key not in doc:
            missing.append(where + key)
            continue
        contains = doc[key].get("contains")
        if not contains:
            continue
        for element in (value if isinstance(value, list) else [value]):
            if isinstance(element, dict):
                missing += undocumented(element, contains, f"{where}{key}.")
    return sorted(set(missing))


def adhoc(tmp_path, module: str, args: dict, check: bool = False, python: str = sys.executable,
          options: tuple = ()) -> dict:
    """Run one module on localhost with ``ansible``; return its result (from the tree callback).

    Every result is also held against the module's RETURN documentation: a key the module returns that its
    RETURN does not describe fails the test that saw it."""
    if shutil.which("ansible", path=BIN) is None:
        pytest.fail("ansible is not installed in the test virtualenv", pytrace=False)
    tree = tmp_path / "tree"
    argv = [os.path.join(BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={python}", "-m", module, "-a", json.dumps(args),
            "-t", str(tree)]
    if check:
        argv.append("--check")
    argv += list(options)
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False,
                          env=ansible_env(tmp_path), cwd=ROOT, timeout=300)
    with open(tree / "localhost") as handle:
        result = json.load(handle)
    if module.startswith("ovatool.vmware.") and "ansible_job_id" not in result:
        assert undocumented(result, return_doc(module)) == [], f"{module} returns keys its RETURN does not describe"
    result["_stdout"] = done.stdout
    result["_rc"] = done.returncode
    shutil.rmtree(tree)
    return result


def task_play(tmp_path, python: str, task: dict) -> tuple:
    """(argv, env) of a playbook running one task on localhost whose Python is ``python``, then a debug of its
    result (read with task_result). The host's temporary files are kept under ``tmp_path/host-tmp``
    (host_files)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False,
                                     "tasks": [dict(task, register="out"), {"ansible.builtin.debug": {"var": "out"}}]}]))
    env = ansible_env(tmp_path)
    env.update(ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_REMOTE_TMP=str(tmp_path / "host-tmp"))
    return [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={python}", str(playbook)], env


def export_all(tmp_path, python: str, extra: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    """playbooks/export_all.yml on localhost whose Python is ``python``, with ``extra`` as extra vars; the host's
    temporary files are kept under ``tmp_path/host-tmp`` (host_files)."""
    env = ansible_env(tmp_path)
    env.update(ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_REMOTE_TMP=str(tmp_path / "host-tmp"))
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), "playbooks/export_all.yml", "-i", "localhost,",
                           "-c", "local", "-e", f"ansible_python_interpreter={python}", "-e", json.dumps(extra)],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, check=False)


def play_task(tmp_path, python: str, task: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run task_play to its end."""
    argv, env = task_play(tmp_path, python, task)
    return subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, check=False)


def task_result(done: subprocess.CompletedProcess) -> dict:
    """The result play_task's debug printed, or the failed task's result (the play ends there)."""
    text = done.stdout
    start = text.find('"out": {')
    if start < 0:
        start = text.index("FAILED! => {")
    return json.JSONDecoder().raw_decode(text[text.index("{", start):])[0]


def host_files(tmp_path) -> bytes:
    """Everything that reached the host and was kept (play_task): modules, their arguments, async results."""
    return b"".join(open(os.path.join(base, name), "rb").read()
                    for base, _dirs, names in os.walk(tmp_path / "host-tmp") for name in names)
