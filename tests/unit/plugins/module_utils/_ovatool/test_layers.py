# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What is shipped to a host carries only host code: the module_utils each module imports, followed import by
import as Ansible's payload builder does, hold nothing of the controller's half of object storage (s3control)
nor of plugin_utils (boto3 and paramiko are imported on the host only when present, for ``via: host``); and the
export core names no storage."""
from __future__ import annotations

import ast
import os

import pytest

from support.ansiblerun import ROOT

PREFIX = "ansible_collections.ovatool.vmware."
MODULES = sorted(n[:-3] for n in os.listdir(os.path.join(ROOT, "plugins", "modules")) if n.endswith(".py"))
CONTROLLER_ONLY = ("plugins.module_utils._ovatool.storage.s3control", "plugins.plugin_utils")


def _path(dotted: str) -> str:
    base = os.path.join(ROOT, *dotted.split("."))
    return base + ".py" if os.path.isfile(base + ".py") else os.path.join(base, "__init__.py")


def _imports(dotted: str):
    """(module, names) of every import in the collection module ``dotted`` (plugins.x.y), relative ones resolved."""
    path = _path(dotted)
    package = dotted if path.endswith("__init__.py") else dotted.rsplit(".", 1)[0]
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                yield ".".join(base + ([node.module] if node.module else [])), tuple(a.name for a in node.names)
            else:
                yield node.module or "", tuple(a.name for a in node.names)


def payload(start: str) -> set:
    """Every collection module ``start`` (plugins.x.y) pulls in, and every outside import among them."""
    seen, outside, todo = set(), set(), [start]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name, names in _imports(current):
            if name.startswith(PREFIX):
                name = name[len(PREFIX):]
            elif not name.startswith("plugins."):
                outside.add(name.split(".")[0])
                continue
            for candidate in [name] + [f"{name}.{n}" for n in names]:
                if os.path.isfile(_path(candidate)):
                    todo.append(candidate)
    return seen | {f"outside:{name}" for name in outside}


@pytest.mark.parametrize("module", MODULES)
def test_a_module_ships_no_controller_code(module):
    shipped = payload(f"plugins.modules.{module}")
    assert not [m for m in shipped if m.startswith(CONTROLLER_ONLY)], sorted(shipped)


def test_the_export_core_names_no_storage():
    for core in ("run.py", "pipeline.py"):
        with open(os.path.join(ROOT, "plugins", "module_utils", "_ovatool", "export", core), encoding="utf-8") as f:
            text = f.read().lower()
        for word in ("s3", "multipart", "presign", "upload", "storage"):
            assert word not in text, f"export/{core} names {word!r}"


def test_the_check_sees_a_controller_import():
    """The walk follows imports far enough to find one: the ova_export action plugin's."""
    assert [m for m in payload("plugins.action.ova_export") if m.startswith(CONTROLLER_ONLY)]
