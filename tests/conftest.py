# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures: the collection where Ansible and Python find it, the corpus, oracles, and real disk images.

Import paths come from pytest's ``pythonpath`` setting (pyproject.toml: ``tests`` for the helper package
``support``, ``.build/collections`` for ``ansible_collections.ovatool.vmware``, a link to this checkout that is
made here when missing) and reach the processes the tests start through ``PYTHONPATH``.
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")
_link = os.path.join(COLLECTIONS, "ansible_collections", "ovatool", "vmware")
if not os.path.lexists(_link):
    os.makedirs(os.path.dirname(_link), exist_ok=True)
    try:
        os.symlink(ROOT, _link)
    except FileExistsError:  # another xdist worker made it first
        pass
    sys.path_importer_cache.pop(COLLECTIONS, None)  # looked up before it existed: look again
    importlib.invalidate_caches()
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS)
os.environ["PYTHONPATH"] = os.pathsep.join([COLLECTIONS, os.path.join(ROOT, "tests")] + [
    entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry])

from support import vmfactory  # noqa: E402  # pylint: disable=wrong-import-position


CORPUS = os.environ.get("OVATOOL_CORPUS", os.path.join(os.path.dirname(ROOT), "shared", "corpus"))
MiB = 1024 * 1024


def pytest_runtest_setup(item) -> None:
    """Tests marked ``xdist_group`` share a server or a build folder and must run on one worker. pytest-xdist groups
    them by a suffix on the node id, which pytest 9.2 ignores (pytest-xdist issue 1386): the tests then run on both
    workers at once and fail only when they happen to collide. Fail them plainly instead."""
    if getattr(item.config.option, "loadgroup", False) and item.get_closest_marker("xdist_group") \
            and "@" not in item.nodeid:
        pytest.fail("--dist loadgroup does not group this test with this pytest and pytest-xdist (pytest-xdist issue "
                    "1386); install scripts/requirements-test.txt, which keeps pytest below 9.2", pytrace=False)


def need_tool(name: str) -> str:
    """Oracles are not optional: a missing one fails the test run loudly instead of skipping."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; scripts/test.sh installs it (apt-get)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> str:
    """A Python with the standard library only, as on ESXi: a virtualenv without pip and without the packages of
    the test run (boto3, paramiko, isal and zlib_ng do not import), made from the test run's own interpreter."""
    import subprocess

    folder = tmp_path_factory.mktemp("bare-python")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = str(folder / "bin" / "python")
    probe = subprocess.run([python, "-c", "import boto3"], capture_output=True, check=False)
    assert probe.returncode != 0, "the bare Python sees the test run's packages"
    return python


@pytest.fixture(scope="module")
def s3_auth(tmp_path_factory):
    """SeaweedFS (S3) that refuses anything not signed with servers.S3_ACCESS/S3_SECRET; bucket ``releases``."""
    pytest.importorskip("boto3")
    from support import servers  # pylint: disable=import-outside-toplevel

    server = servers.SeaweedS3(str(tmp_path_factory.mktemp("seaweed-auth")),
                               credentials=(servers.S3_ACCESS, servers.S3_SECRET))
    try:
        server.make_bucket("releases")
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def corpus() -> str:
    if not os.path.isdir(CORPUS):
        pytest.skip(f"the shared corpus is not at {CORPUS} (CI has it beside the checkout)")
    return CORPUS


@pytest.fixture(scope="session")
def xsd(corpus):
    xmlschema = pytest.importorskip("xmlschema")
    folder = os.path.join(corpus, "xsd")
    return xmlschema.XMLSchema(os.path.join(folder, "dsp8023_1.1.1.xsd"),
                               locations=[("http://schemas.dmtf.org/wbem/wscim/1/common",
                                           os.path.join(folder, "common.xsd"))])


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """Raw images with real file-system content, made once per test worker."""
    need_tool("qemu-img")
    need_tool("mkfs.ext4")
    folder = tmp_path_factory.mktemp("images")
    odd = str(folder / "odd.raw")  # 40 MiB + 3 sectors: not a multiple of the 64 KiB grain
    vmfactory.make_fs_image(odd, 40 * MiB + 1536, 10 * MiB)
    gappy = str(folder / "gappy.raw")  # 200 MiB with data at 0, 150 MiB and the last sector only
    vmfactory.make_fs_image(gappy, 200 * MiB, 4 * MiB)
    with open(gappy, "r+b") as handle:
        with open(odd, "rb") as src:
            handle.seek(150 * MiB + 4096)
            handle.write(src.read(3 * MiB))
        handle.seek(200 * MiB - 512)
        handle.write(b"last sector".ljust(512, b"!"))
    return {"odd": odd, "gappy": gappy}


@pytest.fixture()
def sparse_vm(tmp_path, images):
    """A VM named "Bad Input" with one monolithicSparse disk, and an empty output folder."""
    folder = tmp_path / "vm"
    folder.mkdir()
    vmfactory.convert(images["odd"], str(folder / "disk.vmdk"), "monolithicSparse")
    vmx = vmfactory.write_vmx(str(folder / "vm.vmx"), "Bad Input", [("scsi0:0", "disk.vmdk")])
    out = tmp_path / "out"
    out.mkdir()
    return {"vmx": vmx, "disk": str(folder / "disk.vmdk"), "folder": str(folder), "out": str(out)}
