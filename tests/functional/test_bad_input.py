# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input: a clear error naming the file and the problem, nothing left behind, sources unchanged."""
from __future__ import annotations

import os
import struct

import pytest

from support import vmfactory
from support.sources import fails_cleanly, patch, sparse_layout
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm

MiB = 1024 * 1024


@pytest.fixture()
def vm(sparse_vm):
    return sparse_vm


def test_missing_vmx(vm):
    os.unlink(vm["vmx"])
    fails_cleanly(vm, vm["vmx"], "no such file")


def test_missing_disk(vm):
    os.rename(vm["disk"], vm["disk"] + ".moved")
    fails_cleanly(vm, vm["vmx"], "scsi0:0", "disk.vmdk", "missing")


def test_descriptor_that_does_not_parse(vm, tmp_path):
    text = os.path.join(vm["folder"], "text.vmdk")
    with open(text, "w") as handle:
        handle.write("# Disk DescriptorFile\ncreateType=\"monolithicFlat\"\nRW lots FLAT \"x\"\n")
    vmfactory.write_vmx(vm["vmx"], "Bad Input", [("scsi0:0", "text.vmdk")])
    fails_cleanly(vm, text, "line 3", "does not parse")


def test_grain_directory_outside_the_file(vm):
    patch(vm["disk"], 56, struct.pack("<Q", 0x7FFFFFFF))
    fails_cleanly(vm, vm["disk"], "grain directory", "outside the file")


def test_grain_table_outside_the_file(vm):
    gd_offset = sparse_layout(vm["disk"])[0]
    patch(vm["disk"], gd_offset * 512, struct.pack("<I", 0x7FFFFFF0))
    fails_cleanly(vm, vm["disk"], "grain directory entry 0", "past the end of the file")


def test_grain_outside_the_file_midway(vm):
    """The error comes after writing has begun: the partial OVA must still vanish."""
    gt_sector, table = sparse_layout(vm["disk"])[1:]
    slot = max(i for i, entry in enumerate(table) if entry)
    patch(vm["disk"], gt_sector * 512 + slot * 4, struct.pack("<I", 0x7FFFFFF0))
    fails_cleanly(vm, vm["disk"], f"grain {slot}", "past the end of the file")


def test_flat_extent_shorter_than_declared(vm, images):
    vmfactory.convert(images["odd"], os.path.join(vm["folder"], "flat.vmdk"), "monolithicFlat")
    flat = os.path.join(vm["folder"], "flat-flat.vmdk")
    with open(flat, "r+b") as handle:
        handle.truncate(os.path.getsize(flat) - 4096)
    vmfactory.write_vmx(vm["vmx"], "Bad Input", [("scsi0:0", "flat.vmdk")])
    fails_cleanly(vm, flat, "shorter than declared")


def test_not_a_vmdk_at_all(vm):
    with open(vm["disk"], "wb") as handle:
        handle.write(os.urandom(2 * MiB))
    fails_cleanly(vm, vm["disk"], "neither a VMDK descriptor nor a sparse VMDK")


def test_encrypted_vm(vm):
    with open(vm["vmx"], "a") as handle:
        handle.write('encryption.keySafe = "vmware:key/list/(pair/(phrase/abc))"\r\n')
    fails_cleanly(vm, "encrypted")


def test_bare_esxi_delta_file_is_refused_clearly(vm):
    delta = os.path.join(vm["folder"], "disk-delta.vmdk")
    with open(delta, "wb") as handle:
        handle.write(b"COWD" + struct.pack("<II", 1, 3) + bytes(2036))
    vmfactory.write_vmx(vm["vmx"], "Bad Input", [("scsi0:0", "disk-delta.vmdk")])
    fails_cleanly(vm, delta, "vmfsSparse (COWD)", "open its descriptor")


def test_raw_device_mapping_is_refused_clearly(vm):
    rdm = os.path.join(vm["folder"], "rdm.vmdk")
    with open(rdm, "w") as handle:
        handle.write('# Disk DescriptorFile\nversion=1\nCID=1\nparentCID=ffffffff\ncreateType="vmfsRawDeviceMap"\n'
                     'RW 2048 VMFSRDM "rdm-rdm.vmdk"\n')
    vmfactory.write_vmx(vm["vmx"], "Bad Input", [("scsi0:0", "rdm.vmdk")])
    fails_cleanly(vm, rdm, "raw device mappings")


def test_destination_folder_missing(vm):
    with pytest.raises(OvatoolError, match="destination folder .* does not exist"):
        export_vm(ExportOptions(src=vm["vmx"], dest=os.path.join(vm["out"], "no", "such", "x.ova")))


def test_unknown_codec_and_compression(vm):
    fails_cleanly(vm, "unknown codec", codec="lzma")
    fails_cleanly(vm, "compression", compression="ultra")
    fails_cleanly(vm, "outside 1..9", compression="12")


def test_existing_dest_is_left_alone_unless_forced(vm):
    dest = os.path.join(vm["out"], "keep.ova")
    with open(dest, "wb") as handle:
        handle.write(b"precious")
    result = export_vm(ExportOptions(src=vm["vmx"], dest=dest))
    assert result["changed"] is False and "exists" in result["msg"]
    with open(dest, "rb") as handle:
        assert handle.read() == b"precious"
    result = export_vm(ExportOptions(src=vm["vmx"], dest=dest, force=True))
    assert result["changed"] is True and os.path.getsize(dest) == result["size"]
    assert sorted(os.listdir(vm["out"])) == [".keep.ova.source", "keep.ova"]  # the package and its fingerprint


def test_check_mode_writes_nothing(vm):
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/", check_mode=True))
    assert result["changed"] is True and result["dest"].endswith("Bad_Input.ova")
    assert os.listdir(vm["out"]) == []
