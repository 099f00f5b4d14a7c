# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Snapshot chains and streamOptimized inputs, against qemu-img's own reading of the same files."""
from __future__ import annotations

import os
import re
import struct

import pytest

from support import ovacheck, vmfactory
from support.vmfactory import qemu_io, snapshot_child as child
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm

MiB = 1024 * 1024


def rewrite_descriptor(path: str, change) -> None:
    """Edit the descriptor embedded in a monolithicSparse file (sector 1 onwards, NUL-terminated)."""
    with open(path, "r+b") as handle:
        head = handle.read(512)
        offset, size = struct.unpack_from("<QQ", head, 28)
        handle.seek(offset * 512)
        text = handle.read(size * 512).split(b"\0", 1)[0].decode()
        new = change(text).encode()
        assert len(new) < size * 512
        handle.seek(offset * 512)
        handle.write(new + bytes(size * 512 - len(new)))


@pytest.fixture()
def chain(tmp_path, images):
    """base (monolithicSparse) <- child1 <- child2, with writes, partial grains and explicit zeros."""
    folder = tmp_path / "vm"
    folder.mkdir()
    vmfactory.convert(images["gappy"], str(folder / "base.vmdk"), "monolithicSparse")
    one = child(folder, "base-000001.vmdk", "base.vmdk")
    qemu_io(one, "write -P 0x11 0 1M", "write -P 0x22 150M 300k", "write -z 151M 2M", "write -P 0x33 199M 4k")
    two = child(folder, "base-000002.vmdk", "base-000001.vmdk")
    qemu_io(two, "write -P 0x44 512k 1M", "write -z 0 64k", "write -P 0x55 100M 70k", "write -P 0x66 151M 4k")
    expected = str(tmp_path / "expected.raw")
    vmfactory.run(["qemu-img", "convert", "-O", "raw", two, expected])
    vmx = vmfactory.write_vmx(str(folder / "snap.vmx"), "Snap", [("scsi0:0", "base-000002.vmdk")])
    out = tmp_path / "out"
    out.mkdir()
    return {"folder": str(folder), "vmx": vmx, "expected": expected, "out": str(out), "one": one, "two": two}


def test_three_level_chain_is_flattened(chain, tmp_path):
    result = export_vm(ExportOptions(src=chain["vmx"], dest=chain["out"] + "/"))
    ova = ovacheck.read_ova(result["dest"])
    disk = ovacheck.extract(result["dest"], [n for n in ova["names"] if n.endswith(".vmdk")][0], str(tmp_path))
    ovacheck.assert_same_disk(chain["expected"], disk)
    assert len(result["disks"]) == 1


def test_missing_parent(chain):
    os.unlink(os.path.join(chain["folder"], "base-000001.vmdk"))
    with pytest.raises(OvatoolError) as info:
        export_vm(ExportOptions(src=chain["vmx"], dest=chain["out"] + "/"))
    assert "base-000002.vmdk" in str(info.value) and 'parent disk "base-000001.vmdk" is missing' in str(info.value)
    assert os.listdir(chain["out"]) == []


def test_cid_mismatch(chain):
    rewrite_descriptor(chain["one"], lambda text: re.sub(r"(?m)^CID=\w+", "CID=0badc0de", text))
    with pytest.raises(OvatoolError, match="expects parent CID .* has CID 0badc0de"):
        export_vm(ExportOptions(src=chain["vmx"], dest=chain["out"] + "/"))
    assert os.listdir(chain["out"]) == []


def test_chain_loop(chain):
    rewrite_descriptor(chain["one"], lambda text: text.replace('parentFileNameHint="base.vmdk"',
                                                               'parentFileNameHint="base-000002.vmdk"'))
    with pytest.raises(OvatoolError, match="loops back"):
        export_vm(ExportOptions(src=chain["vmx"], dest=chain["out"] + "/"))


def test_stream_optimized_input(tmp_path, images):
    folder = tmp_path / "vm"
    folder.mkdir()
    vmfactory.convert(images["odd"], str(folder / "in.vmdk"), "streamOptimized")
    vmx = vmfactory.write_vmx(str(folder / "s.vmx"), "Stream In", [("scsi0:0", "in.vmdk")])
    result = export_vm(ExportOptions(src=vmx, dest=str(tmp_path / "s.ova")))
    assert result["disks"][0]["create_type"] == "streamOptimized"
    ovacheck.assert_same_disk(images["odd"], ovacheck.extract(result["dest"], "Stream_In-disk1.vmdk", str(tmp_path)))


def test_damaged_stream_input(tmp_path, images):
    folder = tmp_path / "vm"
    folder.mkdir()
    vmfactory.convert(images["odd"], str(folder / "in.vmdk"), "streamOptimized")
    with open(folder / "in.vmdk", "r+b") as handle:
        handle.seek(65536 + 12 + 40)  # inside the first grain's deflate data
        handle.write(b"\xff" * 64)
    vmx = vmfactory.write_vmx(str(folder / "s.vmx"), "Stream In", [("scsi0:0", "in.vmdk")])
    with pytest.raises(OvatoolError, match="does not inflate|inflates to"):
        export_vm(ExportOptions(src=vmx, dest=str(tmp_path / "s.ova")))
    assert not os.path.exists(tmp_path / "s.ova")


@pytest.mark.parametrize("kind", ["vmfsSparse", "seSparse"])
def test_esxi_delta_over_vmfs_base(tmp_path, images, kind):
    """ESXi snapshot deltas over a thin vmfs base; qemu-img's reading of the same chain is the oracle."""

    from support import esxfactory

    folder = tmp_path / "vm"
    folder.mkdir()
    vmfactory.make_vmfs(images["gappy"], str(folder), "base")
    sectors = os.path.getsize(images["gappy"]) // 512
    if kind == "vmfsSparse":
        grains = {g: bytes([g % 251 + 1]) * 512 for g in list(range(0, 96)) + [150 * 2048 + 7, sectors - 1]}
        esxfactory.cowd_delta(str(folder), "base-000001", sectors, grains, 1, "base.vmdk", "fffffffe")
    else:
        per = 8  # sectors per seSparse grain
        grains = {g: bytes([g % 249 + 3]) * 4096 for g in [0, 1, 5, 150 * 256 + 1, sectors // per - 1]}
        zeros = [2, 3, 150 * 256 + 2]
        esxfactory.sesparse_delta(str(folder), "base-000001", sectors, grains, zeros, "base.vmdk", "fffffffe")
    expected = str(tmp_path / "expected.raw")
    vmfactory.run(["qemu-img", "convert", "-O", "raw", str(folder / "base-000001.vmdk"), expected])
    with open(expected, "rb") as a, open(images["gappy"], "rb") as b:
        assert a.read() != b.read(), "the delta must change something"
    vmx = vmfactory.write_vmx(str(folder / "esx.vmx"), "Esx Delta", [("scsi0:0", "base-000001.vmdk")])
    result = export_vm(ExportOptions(src=vmx, dest=str(tmp_path / "esx.ova")))
    assert result["disks"][0]["create_type"] == kind
    ovacheck.assert_same_disk(expected, ovacheck.extract(result["dest"], "Esx_Delta-disk1.vmdk", str(tmp_path)))
