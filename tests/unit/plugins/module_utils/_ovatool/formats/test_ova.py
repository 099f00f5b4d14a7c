# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tar headers (including sizes past 8 GiB), manifests, names, OVF capacity units."""
from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats import manifest
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats import ova
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats import ovf
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.names import safe_name

GiB = 1024 ** 3


@pytest.mark.parametrize("size", [0, 1, 8 * GiB - 1, 8 * GiB, 8 * GiB + 1, 3 * 1024 ** 4 + 12345])
def test_header_sizes_read_back_with_tarfile(tmp_path, size):
    """Members of 8 GiB and more use GNU base-256 sizes; tarfile reads them exactly."""
    header = ova.tar_header("disk.vmdk", size, 1700000000)
    assert len(header) == 512
    if size >= 8 * GiB:
        assert header[124] & 0x80, "base-256 marker expected in the size field"
    else:
        assert header[124:135].decode() == "%011o" % size
    path = tmp_path / "big.tar"
    with open(path, "wb") as handle:  # a sparse file: header, a hole for the data, a second member, the end
        handle.write(header)
        handle.seek(512 + size + (-size % 512))
        handle.write(ova.tar_header("after.txt", 3, 1700000000) + b"abc".ljust(512, b"\0") + bytes(1024))
    with tarfile.open(path) as archive:
        members = archive.getmembers()
    assert [(m.name, m.size) for m in members] == [("disk.vmdk", size), ("after.txt", 3)]
    assert members[0].mtime == 1700000000 and members[0].isreg()


def test_ova_writer_reserves_and_patches():
    buffer = io.BytesIO()
    writer = ova.OvaWriter(buffer, 1234567890, "sha256")
    first = writer.reserve("a.ovf", 700)
    second = writer.reserve("a.mf", 10)
    member = writer.member("a-disk1.vmdk")
    member.write(b"x" * 1000)
    member.write(b"y" * 24)
    digest = member.close()
    assert digest == hashlib.sha256(b"x" * 1000 + b"y" * 24).hexdigest()
    writer.fill(first, b"<" * 700)
    writer.fill(second, b"0123456789")
    with pytest.raises(Exception, match="reserved"):
        writer.fill(second, b"short")
    writer.close()
    data = buffer.getvalue()
    assert len(data) % 10240 == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert [(m.name, m.size) for m in archive.getmembers()] == [
            ("a.ovf", 700), ("a.mf", 10), ("a-disk1.vmdk", 1024)]
        assert archive.extractfile("a-disk1.vmdk").read() == b"x" * 1000 + b"y" * 24


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_manifest_size_is_exact(algorithm):
    names = ["vm.ovf", "vm-disk1.vmdk", "vm-disk2.vmdk"]
    digests = [(n, hashlib.new(algorithm, n.encode()).hexdigest()) for n in names]
    text = manifest.render(algorithm, digests)
    assert len(text) == manifest.size_of(algorithm, names)
    assert text.decode().splitlines()[0] == f"{algorithm.upper()}(vm.ovf)= {digests[0][1]}"


@pytest.mark.parametrize("raw,expected", [
    ("Ubuntu 64-bit", "Ubuntu_64-bit"), ("../../etc/passwd", "etc_passwd"), ("a/b\\c", "a_b_c"),
    ("nul\x00byte\x07bell", "nul_byte_bell"), ("Café déjà", "Cafe_deja"), ("...", "fallback"),
    ("中文", "fallback"), ("x" * 300, "x" * 64), ("<vm>&\"'", "vm"), (".hidden", "hidden"),
])
def test_safe_name(raw, expected):
    assert safe_name(raw, "fallback") == expected


def test_safe_name_never_empty():
    assert safe_name("", "") == "vm" and safe_name("///", "中") == "vm"


@pytest.mark.parametrize("capacity,expected", [
    (20 * GiB, (20, "byte * 2^30")), (100 * 1024 * 1024, (100, "byte * 2^20")),
    (40 * 1024 * 1024 + 1536, (40 * 1024 * 1024 + 1536, "byte")), (3 * 1024, (3, "byte * 2^10")),
])
def test_capacity_units_are_exact(capacity, expected):
    assert ovf.capacity_units(capacity) == expected
