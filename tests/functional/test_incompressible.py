# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Grains that do not compress are written as stored deflate blocks; the readers users have must read them back.

Two disks: one full of random data, one with an ext4 file system full of real compressed files (packages,
archives, images from this machine). Each is exported with every codec this test run has; qemu-img (check,
compare with the source) and VMware's own vmdk-convert (built from tests/third_party/open-vmdk, its reader
converting the exported disk back to raw) must give back the source's exact bytes, and the grains are counted in
the disk as written: how many are stored, how many deflated."""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib

import pytest

from support import ovacheck, vmfactory
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export import codec as codecs
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# VMware's open-vmdk (Apache-2.0), kept for the tests only (never in the collection's tarball): tests/third_party
PEER = os.path.join(ROOT, "tests", "third_party", "open-vmdk", "build.sh")
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def disks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("incompressible")
    noise = str(folder / "noise.raw")
    with open(noise, "wb") as handle:
        for _mib in range(16):
            handle.write(os.urandom(MiB))
    packed = str(folder / "packed.raw")  # a whole number of grains: see vmdk_convert_reads
    vmfactory.make_fs_image(packed, 48 * MiB, 36 * MiB, compressed=True)
    return {"noise": noise, "packed": packed}


@pytest.fixture(scope="module")
def vmdk_convert(tmp_path_factory):
    if shutil.which("cc") is None or not os.path.exists("/usr/include/zlib.h"):
        pytest.fail("building vmdk-convert needs gcc and zlib1g-dev; scripts/test.sh installs them", pytrace=False)
    done = subprocess.run(["bash", PEER, str(tmp_path_factory.mktemp("vmdk-convert"))], capture_output=True,
                          universal_newlines=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def grain_streams(vmdk: str):
    """Each grain's zlib stream in a streamOptimized disk, read from the records (head: u64 LBA, u32 size; a
    size of 0 is a marker whose LBA field counts the metadata sectors after it, type 0 ends the stream)."""
    with open(vmdk, "rb") as handle:
        data = handle.read()
    at = struct.unpack_from("<Q", data, 64)[0] * 512  # overHead: where the records start
    while at < len(data):
        lba, size = struct.unpack_from("<QI", data, at)
        if size == 0:
            if struct.unpack_from("<I", data, at + 12)[0] == 0:
                return
            at += 512 + lba * 512
            continue
        yield data[at + 12:at + 12 + size]
        at += -(-(12 + size) // 512) * 512


def export_disk(tmp_path, raw: str, codec: str) -> str:
    folder = tmp_path / codec
    folder.mkdir()
    vmdk = vmfactory.convert(raw, str(folder / "src.vmdk"), "monolithicSparse")
    vmx = vmfactory.write_vmx(str(folder / "vm.vmx"), "Packed", [("scsi0:0", "src.vmdk")])
    result = export_vm(ExportOptions(src=vmx, dest=str(folder / "out.ova"), codec=codec))
    assert result["codec"] == codec
    ovacheck.read_ova(result["dest"])
    disk = ovacheck.extract(result["dest"], result["disks"][0]["href"], str(folder))
    ovacheck.assert_same_disk(raw, disk)  # qemu-img check, vmdkinfo, qemu-img compare with the source
    os.unlink(vmdk)
    return disk


def counts(disk: str):
    stored = deflated = 0
    for stream in grain_streams(disk):
        zlib.decompress(stream)  # each grain is a whole zlib stream on its own
        assert len(stream) <= codecs.stored_size(64 * 1024)  # never larger than the grain stored
        if (stream[2] >> 1) & 3 == 0:  # the first deflate block is a stored one
            stored += 1
        else:
            deflated += 1
    return stored, deflated


@pytest.mark.parametrize("codec", codecs.CODECS)
@pytest.mark.parametrize("name", ["noise", "packed"])
def test_disk_reads_back_with_its_grains_stored(tmp_path, disks, name, codec):
    """Random data: every grain stored. Compressed files: most grains stored, while the file system's own
    metadata and the files' headers still deflate. ISA-L is not tested grain by grain (it deflates random data
    fast itself) and stores only what cannot shrink at all."""
    if codec not in codecs.available():
        pytest.skip(f"{codec} is not importable in this test run")
    stored, deflated = counts(export_disk(tmp_path, disks[name], codec))
    if name == "noise":
        assert stored == 16 * MiB // (64 * 1024) and deflated == 0, (stored, deflated)
    else:
        share = 0.3 if codec != "isal" else 0.05
        assert stored >= share * (stored + deflated) and deflated >= 5, (stored, deflated)


def test_vmdk_convert_reads_stored_grains(tmp_path, disks, vmdk_convert):
    """vmdk-convert's reader turns the exported disk back into raw bytes equal to the source. Its reader loops
    forever on a disk whose last grain is partial and holds data (the disks here are whole grains), so it gets
    a time limit."""
    for name in ("noise", "packed"):
        (tmp_path / name).mkdir()
        disk = export_disk(tmp_path / name, disks[name], "zlib")
        raw = str(tmp_path / f"{name}-back.raw")
        done = subprocess.run([vmdk_convert, disk, raw], capture_output=True, universal_newlines=True, timeout=120,
                              check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        compare = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "raw", disks[name], raw],
                                 capture_output=True, universal_newlines=True, check=False)
        assert compare.returncode == 0, compare.stdout
