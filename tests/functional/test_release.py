# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a release ships: the Galaxy tarball (only the collection, whatever lies in the tree) and the AWX
execution environment's build context (ansible-builder create; no container engine runs here)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

from support.ansiblerun import BIN, ROOT
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host import accel
from ansible_collections.ovatool.vmware.plugins.plugin_utils import wheels

# what `pip install .`, a test run, a demo run and an editor leave in a working tree
DIRT = ["build/lib/ovatool_cli/engine/errors.py", "build/lib/ovatool_cli/main.py", "ovatool.egg-info/PKG-INFO",
        "src/ovatool.egg-info/PKG-INFO", "dist/ovatool-1.0.0-py3-none-any.whl", ".venv/bin/python",
        ".ansible/collections/x", ".pytest_cache/v/cache/nodeids", ".hypothesis/examples/x",
        "plugins/module_utils/_ovatool/__pycache__/export.cpython-311.pyc", "tests/__pycache__/conftest.pyc",
        ".build/collections/x", "demo-output/ova/demo.ova", "tests/output/junit.xml",
        "ovatool-vmware-0.1.0.tar.gz"]


def version() -> str:
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        return yaml.safe_load(handle)["version"]


@pytest.fixture()
def checkout(tmp_path):
    """A copy of the checkout as git has it (what a clean clone holds), outside the real tree."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           stdout=subprocess.PIPE).stdout.decode().split("\0")
    copy = tmp_path / "ovatool"
    for name in filter(None, files):
        source = os.path.join(ROOT, name)
        if os.path.isfile(source):
            os.makedirs(copy / os.path.dirname(name), exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def test_galaxy_tarball_ships_only_the_collection(checkout, tmp_path):
    for name in DIRT:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text("dirt\n")
    out = tmp_path / "dist-out"
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out), "."],
                   cwd=str(checkout), check=True, stdout=subprocess.PIPE)
    tarball = out / f"ovatool-vmware-{version()}.tar.gz"
    with tarfile.open(str(tarball)) as archive:
        names = archive.getnames()
        manifest = json.load(archive.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["version"] == version() and manifest["collection_info"]["name"] == "vmware"
    unwanted = ("build", "dist", ".venv", ".ansible", ".pytest_cache", ".hypothesis", ".build", "demo-output",
                "src", "tests/output")
    leaked = [n for n in names if n.split("/")[0] in unwanted or n.startswith("tests/output")
              or "__pycache__" in n or ".egg-info" in n or n.endswith((".tar.gz", ".pyc"))]
    assert leaked == [], leaked
    engines = [n for n in names if n.endswith("/errors.py")]
    assert engines == ["plugins/module_utils/_ovatool/errors.py"], "the engine ships once"
    for needed in ("plugins/modules/ova_export.py", "roles/export/tasks/main.yml", "playbooks/export_all.yml",
                   "meta/runtime.yml", "meta/execution-environment.yml", "README.md", "CHANGELOG.rst",
                   "LICENSES/GPL-3.0-or-later.txt"):
        assert needed in names, needed


def test_execution_environment_context(checkout, tmp_path):
    """scripts/ee.sh from a clean checkout: the collection tarball and the Python requirements land in the
    context, and ansible-galaxy installs the collection from it as the image build would (in _build)."""
    env = dict(os.environ, VIRTUAL_ENV=os.path.dirname(BIN), PATH=BIN + os.pathsep + os.environ["PATH"])
    done = subprocess.run(["bash", "scripts/ee.sh"], cwd=str(checkout), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert done.returncode == 0, done.stdout
    context = checkout / ".build" / "ee" / "context"
    assert (context / "Containerfile").is_file() or (context / "Dockerfile").is_file(), os.listdir(str(context))
    build = context / "_build"
    with tarfile.open(str(build / "collections" / "ovatool-vmware.tar.gz")) as archive:
        info = json.load(archive.extractfile("MANIFEST.json"))["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("ovatool", "vmware", version())
    wanted = (build / "requirements.txt").read_text()
    for package in ("boto3", "paramiko", "cryptography"):
        assert package in wanted, wanted
    installed = tmp_path / "ee-collections"
    # as in the image: no other copy of the collection on the collections path or the Python path
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "-r", "requirements.yml",
                    "-p", str(installed)], cwd=str(build), check=True, stdout=subprocess.PIPE,
                   env=dict(clean, ANSIBLE_COLLECTIONS_PATH=str(installed)))
    assert (installed / "ansible_collections" / "ovatool" / "vmware" / "MANIFEST.json").is_file()
    # ansible-builder's own introspection over what was installed, as the image build runs it
    found = subprocess.run([os.path.join(BIN, "python"), str(build / "scripts" / "introspect.py"), "introspect",
                            str(installed)], check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout
    for package in ("boto3", "paramiko", "cryptography"):
        assert package in found and "ovatool.vmware" in found, found
    # the wheelhouse the image bakes: the context's own script, narrowed to this Python and machine, fills a
    # folder from which the controller picks the accelerator for a host like this one
    containerfile = next(p for p in (context / "Containerfile", context / "Dockerfile") if p.is_file()).read_text()
    assert "wheelhouse.sh /usr/share/ovatool/wheelhouse" in containerfile, containerfile
    assert "OVATOOL_WHEELHOUSE=/usr/share/ovatool/wheelhouse" in containerfile, containerfile
    house = tmp_path / "wheelhouse"
    filled = subprocess.run(["bash", str(build / "ovatool" / "wheelhouse.sh"), str(house)], env=dict(
        os.environ, OVATOOL_PIP=f"{sys.executable} -m pip", OVATOOL_WHEELHOUSE_MACHINES=os.uname().machine,
        OVATOOL_WHEELHOUSE_PYTHONS=f"{sys.version_info[0]}.{sys.version_info[1]}"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert filled.returncode == 0, filled.stdout
    chosen, reasons = wheels.pick([str(house)], accel.interpreter())
    assert sorted(w["codec"] for w in chosen) == ["isal", "zlib-ng"] and reasons == [], (chosen, reasons)
