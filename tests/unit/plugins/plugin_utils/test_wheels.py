# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which wheel fits which host Python: the controller's choice from a wheelhouse, by the tags in the wheels' names
(PEP 425/427/600/656), for the hosts users have. The names are those of real isal and zlib-ng wheels."""
from __future__ import annotations

import subprocess
import zipfile

import pytest

from ansible_collections.ovatool.vmware.plugins.plugin_utils import wheels

NAMES = [
    "isal-1.7.2-cp38-cp38-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "isal-1.7.2-cp38-cp38-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "isal-1.7.2-cp38-cp38-musllinux_1_2_x86_64.whl",
    "isal-1.9.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
    "isal-1.9.1-cp311-cp311-musllinux_1_2_aarch64.whl",
    "isal-1.9.1-cp311-cp311-macosx_11_0_arm64.whl",
    "zlib_ng-0.5.1-cp38-cp38-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "zlib_ng-1.1.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
    "zlib_ng-1.1.0-cp311-cp311-macosx_10_9_universal2.whl",
]


def host(version, machine="x86_64", libc="glibc", libc_version="2.36", platform="linux", macos=""):
    return {"implementation": "cpython", "version": list(version), "abiflags": "", "platform": platform,
            "system": "Linux", "machine": machine, "bits": 64, "libc": libc, "libc_version": libc_version,
            "macos_version": macos}


@pytest.fixture()
def house(tmp_path):
    for name in NAMES:
        with zipfile.ZipFile(tmp_path / name, "w") as archive:
            archive.writestr("x/__init__.py", name)
    return str(tmp_path)


@pytest.mark.parametrize("facts, expected", [
    (host((3, 8), libc_version="2.17"), {"isal": NAMES[0], "zlib-ng": NAMES[6]}),  # RHEL 7's glibc
    (host((3, 8), machine="aarch64", libc_version="2.28"), {"isal": NAMES[1]}),
    (host((3, 8), libc="musl", libc_version="1.2"), {"isal": NAMES[2]}),  # Alpine
    (host((3, 11)), {"isal": NAMES[3], "zlib-ng": NAMES[7]}),
    (host((3, 11), machine="aarch64", libc="musl", libc_version="1.2"), {"isal": NAMES[4]}),
    (host((3, 11), machine="arm64", platform="darwin", libc="", libc_version="", macos="14.2"),
     {"isal": NAMES[5], "zlib-ng": NAMES[8]}),  # Fusion on Apple silicon: arm64 and universal2 wheels
    (host((3, 11), libc_version="2.12"), {}),  # glibc older than the wheels' manylinux2014 (2.17)
    (host((3, 12)), {}),  # no wheel for that Python in this wheelhouse
    (host((3, 8), libc="musl", libc_version="1.1"), {}),
])
def test_pick_by_tags(house, facts, expected):
    chosen, reasons = wheels.pick([house], facts)
    assert {w["codec"]: w["wheel"] for w in chosen} == expected
    assert len(reasons) == 2 - len(expected)
    for reason in reasons:
        assert "wheel for CPython" in reason and house in reason, reason


def test_a_damaged_wheel_is_passed_over_for_a_sound_one(house, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    name = NAMES[3].replace("1.9.1", "1.9.2")  # newer, so it is tried first
    (other / name).write_bytes(b"PK\x03\x04 not really a zip")
    chosen, reasons = wheels.pick([str(other), house], host((3, 11)))
    assert {w["codec"]: w["wheel"] for w in chosen} == {"isal": NAMES[3], "zlib-ng": NAMES[7]} and reasons == []
    (tmp_path_factory.getbasetemp() / "only").mkdir()
    alone = tmp_path_factory.getbasetemp() / "only" / name
    alone.write_bytes(b"PK\x03\x04 not really a zip")
    chosen, reasons = wheels.pick([str(alone.parent)], host((3, 11)))
    assert chosen == [] and "not a readable wheel" in reasons[0]


def test_tags_of_a_host_python():
    tags = wheels.supported_tags(host((3, 11), libc_version="2.28"))
    assert tags[0] == ("cp311", "cp311", "manylinux_2_28_x86_64")
    assert ("cp311", "cp311", "manylinux2014_x86_64") in tags and ("cp38", "abi3", "manylinux1_x86_64") in tags
    assert ("py3", "none", "any") in tags and ("cp311", "cp311", "manylinux_2_29_x86_64") not in tags
    assert wheels.parse_wheel(NAMES[3])[0:2] == ("isal", (1, 9, 1))
    assert wheels.parse_wheel("README.md") is None


def test_a_failed_download_is_not_retried_at_once(tmp_path, monkeypatch):
    """An offline controller: pip fails; the next host (or run) within FAILED_FOR seconds gets the same reason at
    once instead of waiting for pip again."""
    calls = []

    def failing_pip(argv, **_kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 1, b"", b"ERROR: Could not find a version that satisfies isal")

    monkeypatch.setattr(wheels.subprocess, "run", failing_pip)
    first = wheels.download(str(tmp_path), host((3, 11)), ["isal"])
    assert "Could not find a version" in first and len(calls) == 1
    again = wheels.download(str(tmp_path), host((3, 11)), ["isal"])
    assert "not tried again" in again and "Could not find a version" in again and len(calls) == 1
    other = wheels.download(str(tmp_path), host((3, 12)), ["isal"])  # another kind of host is tried
    assert len(calls) == 2 and "not tried again" not in other
