# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VMX parsing: the real corpus, encodings, escapes, devices."""
from __future__ import annotations

import glob
import os

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats import vmx
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import VmxError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.info import vm_info

EXPECTED = {  # file -> (display name, guestOS, cpus, memory, firmware, disk addresses, nic types)
    "Fred-23_macOS 10.15_sata-disk_efi.vmx": ("macOS 10.15", "darwin19-64", 2, None, "efi", None, None),
    "takahiro_Windows 7 x64.vmx": ("Windows 7 x64 Test", "windows7-64", None, 2048, "bios", None, None),
    "foresty_Debian 10.x 64-bit.vmx": ("Debian 10.x 64-bit", "debian10-64", 8, 4000, "bios", ["scsi0:0"], None),
    "illertimes_FreeBSD_ide-disk.vmx": ("FreeBSD", "freebsd", None, 4392, "bios", ["ide0:0"], ["e1000"]),
    "LanRenLan_Windows 10 x64_nvme.vmx": ("Windows 10 x64", "windows9-64", 4, 4096, None, ["nvme0:0"], None),
    "virtmanager_virtconv_test-nodisks.vmx": ("fedora", None, None, None, "bios", [], None),
}


def corpus_vmx(corpus):
    files = sorted(glob.glob(os.path.join(corpus, "vmx", "*.vmx")))
    assert files, "the corpus has no VMX files"
    return files


def test_every_corpus_vmx_parses(corpus):
    for path in corpus_vmx(corpus):
        vm = vmx.load_vm(path)
        assert vm.name and "\ufffd" not in vm.name, path
        assert not vm.warnings or "LanRenLan" in path, vm.warnings
        assert vm.cpus >= 1 and vm.cores_per_socket >= 1, path
        assert vm.memory_mb >= 32, path
        assert 3 <= vm.hardware_version <= 30, path
        assert vm.firmware in ("bios", "efi"), path
        for disk in vm.disks:
            assert disk.file_name.lower().endswith(".vmdk") and disk.kind in vmx.CONTROLLER_KINDS
            assert any(c.name == disk.controller for c in vm.controllers), path
        info = vm_info(vm)
        assert all(d["missing"] for d in info["disks"]), "corpus VMX files come without their disks"
        for nic in vm.nics:
            assert nic.virtual_dev in ("e1000", "e1000e", "vmxnet3", "vmxnet", "vlance"), (path, nic)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_values(corpus, name):
    path = os.path.join(corpus, "vmx", name)
    vm = vmx.load_vm(path)
    display, guest, cpus, memory, firmware, disks, nics = EXPECTED[name]
    assert vm.name == display
    if guest:
        assert vm.guest_os == guest
    if cpus:
        assert vm.cpus == cpus
    if memory:
        assert vm.memory_mb == memory
    if firmware:
        assert vm.firmware == firmware
    if disks is not None:
        assert [d.address for d in vm.disks] == disks
    if nics:
        assert [n.virtual_dev for n in vm.nics] == nics


def test_windows_absolute_cdrom_path_is_kept(corpus):
    vm = vmx.load_vm(os.path.join(corpus, "vmx", "illertimes_FreeBSD_ide-disk.vmx"))
    assert [c.file_name for c in vm.cdroms] == ["C:\\Users\\Students\\Downloads\\FreeBSD-11.1-RELEASE-i386-disc1.iso"]


@pytest.mark.parametrize("encoding,text", [
    ("GBK", "中文虚拟机"), ("Shift_JIS", "テスト仮想マシン"), ("windows-949-2000", "가상 머신"),
    ("windows-1252", "Café déjà vu"), ("UTF-8", "Ünïcödé ✓"),
])
def test_declared_encodings(tmp_path, encoding, text):
    path = tmp_path / "enc.vmx"
    codec = vmx.python_encoding(encoding)
    path.write_bytes(f'.encoding = "{encoding}"\r\ndisplayName = "{text}"\r\n'.encode(codec))
    assert vmx.load_vm(str(path)).name == text


def test_no_encoding_falls_back_from_utf8(tmp_path):
    path = tmp_path / "old.vmx"
    path.write_bytes('displayName = "Caf\xe9"\n'.encode("cp1252"))
    assert vmx.load_vm(str(path)).name == "Café"


def test_escapes_keys_comments_and_unquoted(tmp_path):
    path = tmp_path / "x.vmx"
    path.write_text(
        '#!/usr/bin/vmware\n# comment\n\nDISPLAYNAME = "a|22b|7Cc|0Ad"\nmemsize = 512\n'
        'scsi0.present = "true"\nScsi0:0.Present = "TRUE"\nscsi0:0.fileName = "C:\\VMs\\disk.vmdk"\n'
        'numvcpus = "4"\ncpuid.coresPerSocket = "2"\nfirmware = "EFI"\nuefi.secureBoot.enabled = "TRUE"\n')
    vm = vmx.load_vm(str(path))
    assert vm.name == 'a"b|c\nd'
    assert vm.memory_mb == 512 and vm.cpus == 4 and vm.cores_per_socket == 2
    assert vm.firmware == "efi" and vm.secure_boot
    assert vm.disks[0].file_name == "C:\\VMs\\disk.vmdk"
    assert vm.disks[0].path == "C:\\VMs\\disk.vmdk"  # a Windows path stays as it is: reported missing


def test_units_without_present_controller_are_ignored(tmp_path):
    path = tmp_path / "x.vmx"
    path.write_text('sata0:0.present = "TRUE"\nsata0:0.fileName = "a.vmdk"\n'
                    'ide1:0.present = "TRUE"\nide1:0.fileName = "b.vmdk"\n')
    vm = vmx.load_vm(str(path))
    assert [d.address for d in vm.disks] == ["ide1:0"]  # IDE controllers are always there


@pytest.mark.parametrize("content,message", [
    (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "binary data"),
    (b"just some words\nand more words\nwithout any equals\nsigns\n", "not a VMX file"),
    (b'.encoding = "klingon-8"\ndisplayName = "x"\n', "unknown .encoding"),
    (b'memsize = "lots"\n', "memsize"),
])
def test_bad_vmx_gives_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.vmx"
    path.write_bytes(content)
    with pytest.raises(VmxError) as info:
        vmx.load_vm(str(path))
    assert message in str(info.value) and str(path) in str(info.value)


def test_missing_vmx_and_directory(tmp_path):
    with pytest.raises(VmxError, match="no such file"):
        vmx.load_vm(str(tmp_path / "nope.vmx"))
    with pytest.raises(VmxError, match="directory"):
        vmx.load_vm(str(tmp_path))


def test_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.vmx"
    os.mkfifo(str(fifo))
    with pytest.raises(VmxError, match="not a regular file"):
        vmx.load_vm(str(fifo))


def test_invalid_bytes_for_the_encoding_are_replaced_with_a_warning(corpus):
    # a real file: a Chinese folder name cut in the middle of a UTF-8 sequence
    vm = vmx.load_vm(os.path.join(corpus, "vmx", "LanRenLan_Windows 10 x64_nvme.vmx"))
    assert vm.name == "Windows 10 x64"
    assert len(vm.warnings) == 1 and "not valid UTF-8" in vm.warnings[0]


@pytest.mark.parametrize("vmx_id,vim_id,cim", [
    ("windows9-64", "windows9_64Guest", 1), ("windows11-64", "windows11_64Guest", 1),
    ("windows9srv-64", "windows9Server64Guest", 1), ("windows2019srv-64", "windows2019srv_64Guest", 1),
    ("windows2019srvnext-64", "windows2019srvNext_64Guest", 1), ("windows2022srvnext-64", "windows2022srvNext_64Guest", 1),
    ("windows7-64", "windows7_64Guest", 105), ("rhel8-64", "rhel8_64Guest", 80), ("rhel9-64", "rhel9_64Guest", 80),
    ("rhel10-64", "rhel10_64Guest", 80), ("rhel4", "rhel4Guest", 79), ("rockylinux-64", "rockylinux_64Guest", 80),
    ("almalinux-64", "almalinux_64Guest", 80), ("ubuntu-64", "ubuntu64Guest", 94), ("ubuntu", "ubuntuGuest", 93),
    ("debian12-64", "debian12_64Guest", 96), ("debian10-64", "debian10_64Guest", 96), ("sles15-64", "sles15_64Guest", 85),
    ("vmware-photon-64", "vmwarePhoton64Guest", 36), ("freebsd", "freebsdGuest", 42),
    ("freebsd13-64", "freebsd13_64Guest", 78), ("other5xlinux-64", "other5xLinux64Guest", 101),
    ("other", "otherGuest", 1), ("other-64", "otherGuest64", 102), ("darwin19-64", "darwin19_64Guest", 1),
    ("centos7-64", "centos7_64Guest", 107), ("Windows9-64", "windows9_64Guest", 1),
])
def test_guest_os_mapping(vmx_id, vim_id, cim):
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.guestos import map_guest_os

    assert map_guest_os(vmx_id) == (vim_id, cim)
