# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""export_all.yml as AWX runs a job template: through ansible-runner (a private data dir with the project, the
inventory and the survey's extra variables), read back from the job events AWX shows line by line."""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from support import vmfactory
from support.ansiblerun import BIN, ROOT

SECRET = "awx-credential-s3cr3t"


def job_events(private: str, ident: str) -> list:
    paths = sorted(glob.glob(os.path.join(private, "artifacts", ident, "job_events", "*.json")),
                   key=lambda p: int(os.path.basename(p).split("-", 1)[0]))
    events = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            events.append(json.load(handle))
    return events


def test_a_job_template_run_through_ansible_runner(tmp_path, images):
    runner = shutil.which("ansible-runner", path=BIN)
    if runner is None:
        pytest.fail("ansible-runner is not installed (scripts/requirements-test.txt has it)", pytrace=False)
    vm = tmp_path / "vms" / "web"
    vm.mkdir(parents=True)
    vmfactory.convert(images["odd"], str(vm / "web.vmdk"), "monolithicSparse")
    vmfactory.write_vmx(str(vm / "web.vmx"), "Web", [("scsi0:0", "web.vmdk")])
    private = tmp_path / "job"
    (private / "project").mkdir(parents=True)
    (private / "inventory").mkdir()
    (private / "env").mkdir()
    shutil.copy(os.path.join(ROOT, "playbooks", "export_all.yml"), str(private / "project" / "export_all.yml"))
    (private / "inventory" / "hosts").write_text(
        f"hypervisor ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    # the survey's answers, and a credential injected as extra variables (its secret must not reach the events)
    (private / "env" / "extravars").write_text(yaml.safe_dump({
        "ovatool_vm_search_paths": [str(tmp_path / "vms")], "ovatool_output_dir": str(tmp_path / "out"),
        "ovatool_images": ["qcow2"], "ovatool_manage_power": False, "ovatool_accelerator": False,
        "ovatool_upload_dest": f"file://{tmp_path}/shelf/", "ovatool_upload_options": {"url_password": SECRET}}))
    (private / "env" / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build",
                                                                                            "collections")),
        "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp")}))
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    done = subprocess.run([runner, "run", str(private), "-p", "export_all.yml", "--ident", "job1"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stdout[-4000:]
    assert (private / "artifacts" / "job1" / "rc").read_text().strip() == "0"
    events = job_events(str(private), "job1")
    assert events and events[-1]["event"] == "playbook_on_stats"
    stdout = "\n".join(event.get("stdout", "") for event in events)
    # what the job output shows: the task per step, the VM's end line, the summary
    tasks = [event["event_data"]["task"] for event in events if event["event"] == "playbook_on_task_start"]
    for step in ("Plan the exports", "Start the exports", "Wait for the exports", "Verify the OVAs",
                 "Upload the files", "Summary"):
        assert any(step in task for task in tasks), (step, tasks)
    assert re.search(r"hypervisor \| \S+/web\.vmx: exported to \S+/Web\.ova in [\d.]+ s", stdout), stdout[-3000:]
    summary = next(e for e in events if e["event"] == "runner_on_ok" and e["event_data"]["task"] == "Summary")
    exported = summary["event_data"]["res"]["msg"]["exported"]
    assert exported == [str(tmp_path / "out" / "Web.ova")], summary["event_data"]["res"]
    assert sorted(os.listdir(tmp_path / "shelf")) == ["Web-disk1.qcow2", "Web.SHA256SUMS", "Web.ova"]
    # the credential's secret is in no event AWX would store or show
    for path in glob.glob(os.path.join(str(private), "artifacts", "job1", "**", "*"), recursive=True):
        if os.path.isfile(path) and not path.endswith(("env/extravars", "env/envvars")):
            with open(path, "rb") as handle:
                assert SECRET.encode() not in handle.read(), path
