# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""OVF Tool's output options: reproducible bytes, OVF folders, signing, hardware cap, export flags, NVRAM;
and the hardware of every real VMX in the corpus, exported and read back."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tarfile

import pytest

from support import ovacheck, vmfactory
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats import vmx as vmxmod
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.guestos import map_guest_os
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.ovf import NIC_SUBTYPES, SCSI_SUBTYPES
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.verify import verify

OVF, RASD = ovacheck.OVF_NS, ovacheck.RASD_NS
VMW = "http://www.vmware.com/schema/ovf"


@pytest.fixture()
def vm(tmp_path, images):
    folder = tmp_path / "vm"
    folder.mkdir()
    vmfactory.convert(images["odd"], str(folder / "d.vmdk"), "monolithicSparse")
    (folder / "vm.nvram").write_bytes(b"NVRAM" + bytes(range(256)) * 30)
    vmx = vmfactory.write_vmx(str(folder / "vm.vmx"), "Options VM", [("scsi0:0", "d.vmdk")], extra={
        "nvram": "vm.nvram", "firmware": "efi", "uefi.secureBoot.enabled": "TRUE",
        "uuid.bios": "56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc", "tools.syncTime": "FALSE",
        "custom.appliance.role": "web <&> \"edge\"", "vtpm.present": "TRUE"})
    out = tmp_path / "out"
    out.mkdir()
    return {"vmx": vmx, "out": str(out), "folder": str(folder), "raw": images["odd"]}


def items(envelope, resource_type: str):
    return [i for i in envelope.iter(f"{{{OVF}}}Item") if i.findtext(f"{{{RASD}}}ResourceType") == resource_type]


def configs(envelope, tag: str = "Config"):
    return {c.get(f"{{{VMW}}}key"): c.get(f"{{{VMW}}}value") for c in envelope.iter(f"{{{VMW}}}{tag}")}


@pytest.mark.parametrize("codec", ["zlib", "zlib-ng"])
def test_reproducible_output(vm, codec):
    """zlib and zlib-ng encode the same grain the same way every time, so the same inputs and options give the
    same bytes, whatever the thread count. (ISA-L does not promise that: its encoding of a grain can vary from run
    to run, always decoding to the same data; docs/formats.md.)"""
    first = export_vm(ExportOptions(src=vm["vmx"], dest=os.path.join(vm["out"], "a.ova"), codec=codec, threads=1))
    second = export_vm(ExportOptions(src=vm["vmx"], dest=os.path.join(vm["out"], "b.ova"), codec=codec, threads=2))
    with open(first["dest"], "rb") as a, open(second["dest"], "rb") as b:
        assert a.read() == b.read()


def test_nvram_efi_vtpm_and_flags(vm, xsd, tmp_path):
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/", export_flags=["mac", "uuid", "extraconfig"],
                                     max_hardware_version=14))
    assert any("virtual TPM" in w for w in result["warnings"])
    ova = ovacheck.read_ova(result["dest"])
    xsd.validate(ova["ovf"].decode())
    assert ova["names"] == ["Options_VM.ovf", "Options_VM.mf", "Options_VM-disk1.vmdk", "Options_VM-file1.nvram"]
    with tarfile.open(result["dest"]) as archive:
        assert archive.extractfile("Options_VM-file1.nvram").read() == open(vm["folder"] + "/vm.nvram", "rb").read()
    env = ova["envelope"]
    assert env.find(f".//{{{OVF}}}System/{{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
                    f"CIM_VirtualSystemSettingData}}VirtualSystemType").text == "vmx-14"
    plain = configs(env)
    assert plain["firmware"] == "efi" and plain["bootOptions.efiSecureBootEnabled"] == "true"
    assert plain["uuid"] == "564d1234-5678-9abc-def0-123456789abc"
    extra = configs(env, "ExtraConfig")
    assert extra["nvram"] == "ovf:/file/file2"
    assert extra["custom.appliance.role"] == 'web <&> "edge"'  # escaped by the XML library, read back intact
    assert extra["tools.syncTime"] == "FALSE" and "displayName" not in extra and "memsize" not in extra
    nic = items(env, "10")[0]
    assert nic.findtext(f"{{{RASD}}}Address") == "00:0c:29:12:34:56"
    assert verify(result["dest"], deep=True)["ok"]


def test_no_flags_no_mac_no_extraconfig(vm):
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/"))
    env = ovacheck.read_ova(result["dest"])["envelope"]
    assert items(env, "10")[0].findtext(f"{{{RASD}}}Address") is None
    assert set(configs(env, "ExtraConfig")) == {"nvram"} and "uuid" not in configs(env)


def test_ovf_folder_format(vm, tmp_path):
    dest = os.path.join(vm["out"], "appliance")
    result = export_vm(ExportOptions(src=vm["vmx"], dest=dest, format="ovf"))
    assert result["dest"] == dest and result["format"] == "ovf"
    assert sorted(os.listdir(dest)) == sorted(["Options_VM.ovf", "Options_VM.mf", "Options_VM-disk1.vmdk",
                                               "Options_VM-file1.nvram"])
    assert sorted(os.listdir(vm["out"])) == [".appliance.source", "appliance"], "no temporary folder may remain"
    check = verify(os.path.join(dest, "Options_VM.ovf"), require_manifest=True, deep=True)
    assert check["ok"], check["problems"]
    ovacheck.assert_same_disk(vm["raw"], os.path.join(dest, "Options_VM-disk1.vmdk"))
    again = export_vm(ExportOptions(src=vm["vmx"], dest=dest, format="ovf"))
    assert again["changed"] is False
    forced = export_vm(ExportOptions(src=vm["vmx"], dest=dest, format="ovf", force=True))
    assert forced["changed"] is True and sorted(os.listdir(vm["out"])) == [".appliance.source", "appliance"]


def test_signed_ova_verifies_with_openssl(vm, tmp_path):
    key, cert = str(tmp_path / "signer.key"), str(tmp_path / "signer.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:3072", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=ovatool appliance signer", "-passout", "pass:correct horse"],
                   check=True, capture_output=True)
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/", private_key=key, certificate=cert,
                                     private_key_passphrase="correct horse"))
    assert result["signed"] is True
    with tarfile.open(result["dest"]) as archive:
        names = archive.getnames()
        assert names[:3] == ["Options_VM.ovf", "Options_VM.mf", "Options_VM.cert"]
        manifest = archive.extractfile("Options_VM.mf").read()
        cert_text = archive.extractfile("Options_VM.cert").read().decode()
    first, pem = cert_text.split("\n", 1)
    assert first.startswith("SHA256(Options_VM.mf)= ") and "BEGIN CERTIFICATE" in pem
    (tmp_path / "m.mf").write_bytes(manifest)
    (tmp_path / "sig").write_bytes(bytes.fromhex(first.split("= ", 1)[1]))
    (tmp_path / "c.pem").write_text(pem)
    pub = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "c.pem"), "-pubkey", "-noout"], check=True,
                         capture_output=True).stdout
    (tmp_path / "pub.pem").write_bytes(pub)
    check = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature",
                            str(tmp_path / "sig"), str(tmp_path / "m.mf")], capture_output=True, check=False)
    assert check.returncode == 0 and b"Verified OK" in check.stdout
    checked = verify(result["dest"])
    assert checked["ok"] and checked["signature"]["valid"] is True


def test_wrong_passphrase_is_reported(vm, tmp_path):
    key, cert = str(tmp_path / "k.key"), str(tmp_path / "k.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=x", "-passout", "pass:right"], check=True, capture_output=True)
    with pytest.raises(Exception, match="private key"):
        export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/", private_key=key, certificate=cert,
                                private_key_passphrase="wrong"))
    assert os.listdir(vm["out"]) == []


def test_every_corpus_vmx_exports_with_its_hardware(corpus, xsd, tmp_path):
    """Real VMX files, with small stand-in disks at the paths they name: the OVF has their hardware."""
    exported = 0
    for source in sorted(glob.glob(os.path.join(corpus, "vmx", "*.vmx"))):
        folder = tmp_path / f"vm{exported}"
        folder.mkdir()
        target = str(folder / "machine.vmx")
        shutil.copyfile(source, target)
        vm = vmxmod.load_vm(target)
        if any(os.path.isabs(d.file_name) or "\\" in d.file_name for d in vm.disks):
            continue
        for disk in vm.disks:
            os.makedirs(os.path.dirname(disk.path), exist_ok=True)
            vmfactory.run(["qemu-img", "create", "-q", "-f", "vmdk", disk.path, "3M"])
        if vm.encrypted:
            continue
        result = export_vm(ExportOptions(src=target, dest=str(folder) + "/"))
        env = ovacheck.read_ova(result["dest"])["envelope"]
        xsd.validate(ovacheck.ET.tostring(env).decode())
        name = os.path.basename(source)
        assert len(items(env, "17")) == len(vm.disks), name
        assert len(items(env, "15")) == len(vm.cdroms), name
        assert [i.findtext(f"{{{RASD}}}ResourceSubType") for i in items(env, "10")] == [
            NIC_SUBTYPES.get(n.virtual_dev, "E1000") for n in vm.nics], name
        scsi = [i.findtext(f"{{{RASD}}}ResourceSubType") for i in items(env, "6")]
        assert scsi == [SCSI_SUBTYPES.get(c.virtual_dev, "lsilogic") for c in vm.controllers if c.kind == "scsi"]
        assert len(items(env, "20")) == len([c for c in vm.controllers if c.kind in ("sata", "nvme")]), name
        os_section = env.find(f".//{{{OVF}}}OperatingSystemSection")
        assert (os_section.get(f"{{{VMW}}}osType"), int(os_section.get(f"{{{OVF}}}id"))) == map_guest_os(vm.guest_os)
        assert (configs(env).get("firmware") == "efi") == (vm.firmware == "efi"), name
        cpu = items(env, "3")[0]
        assert cpu.findtext(f"{{{RASD}}}VirtualQuantity") == str(vm.cpus)
        assert items(env, "4")[0].findtext(f"{{{RASD}}}VirtualQuantity") == str(vm.memory_mb)
        exported += 1
    assert exported >= 12, f"only {exported} corpus VMs could be exported"


def test_include_images_carries_the_iso(vm, xsd):
    iso = os.path.join(vm["folder"], "installer.iso")
    with open(iso, "wb") as handle:
        handle.write(b"CD001" * 5000)
    with open(vm["vmx"], "a", newline="\r\n") as handle:
        handle.write('ide1:0.present = "TRUE"\nide1:0.deviceType = "cdrom-image"\nide1:0.fileName = "installer.iso"\n'
                     'ide1:1.present = "TRUE"\nide1:1.deviceType = "cdrom-image"\nide1:1.fileName = "gone.iso"\n')
    plain = export_vm(ExportOptions(src=vm["vmx"], dest=os.path.join(vm["out"], "plain.ova")))
    assert not any(n.endswith(".iso") for n in ovacheck.read_ova(plain["dest"])["names"])
    result = export_vm(ExportOptions(src=vm["vmx"], dest=os.path.join(vm["out"], "iso.ova"), include_images=True))
    ova = ovacheck.read_ova(result["dest"])
    xsd.validate(ova["ovf"].decode())
    assert ova["names"][2:] == ["Options_VM-disk1.vmdk", "Options_VM-file1.iso", "Options_VM-file2.nvram"]
    cdroms = items(ova["envelope"], "15")
    assert cdroms[0].findtext(f"{{{RASD}}}HostResource") == "ovf:/file/file2"
    assert cdroms[1].findtext(f"{{{RASD}}}HostResource") is None  # its ISO is not here: exported empty
    assert configs(ova["envelope"], "ExtraConfig")["nvram"] == "ovf:/file/file3"
    assert any("gone.iso" in w for w in result["warnings"])
    with tarfile.open(result["dest"]) as archive:
        assert archive.extractfile("Options_VM-file1.iso").read() == b"CD001" * 5000


def test_same_items_as_ovf_tool(corpus, tmp_path, images):
    """A VM with the hardware of an OVF Tool 4.6.2 export in the corpus gets the same kinds of items."""
    import xml.etree.ElementTree as ET

    reference = ET.parse(os.path.join(corpus, "ovf", "pedrorotta_Ubuntu 64-bit_ovftool462.ovf")).getroot()
    folder = tmp_path / "ubuntu"
    folder.mkdir()
    vmfactory.convert(images["odd"], str(folder / "Ubuntu 64-bit.vmdk"), "monolithicSparse")
    (folder / "ubuntu.iso").write_bytes(b"ISO" * 1000)
    vmx = vmfactory.write_vmx(str(folder / "Ubuntu 64-bit.vmx"), "Ubuntu 64-bit", [("scsi0:0", "Ubuntu 64-bit.vmdk")],
                              extra={"virtualHW.version": "21", "memsize": "4096", "sata0.present": "TRUE",
                                     "usb.present": "TRUE", "ehci.present": "TRUE", "sound.present": "TRUE",
                                     "vmci0.present": "TRUE", "ethernet0.virtualDev": "e1000",
                                     "ethernet0.connectionType": "bridged", "sata0:1.present": "TRUE",
                                     "sata0:1.deviceType": "cdrom-image", "sata0:1.fileName": "ubuntu.iso"})
    ours = ovacheck.read_ova(export_vm(ExportOptions(src=vmx, dest=str(tmp_path) + "/", include_images=True))["dest"])

    def kinds(envelope):
        return sorted((i.findtext(f"{{{RASD}}}ResourceType"), i.findtext(f"{{{RASD}}}ResourceSubType") or "",
                       i.findtext(f"{{{RASD}}}Connection") or "", i.findtext(f"{{{RASD}}}HostResource") is not None)
                      for i in envelope.iter(f"{{{OVF}}}Item"))

    assert kinds(ours["envelope"]) == kinds(reference)
    for tag in ("OperatingSystemSection",):
        assert ours["envelope"].find(f".//{{{OVF}}}{tag}").attrib == reference.find(f".//{{{OVF}}}{tag}").attrib
    system = "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData}VirtualSystemType"
    assert ours["envelope"].find(f".//{{{OVF}}}System/{system}").text == reference.find(f".//{{{OVF}}}System/{system}").text


def test_refresh_exports_only_stale_packages(vm, tmp_path):
    dest = os.path.join(vm["out"], "r.ova")
    first = export_vm(ExportOptions(src=vm["vmx"], dest=dest, refresh=True))
    assert first["changed"] and os.path.exists(os.path.join(vm["out"], ".r.ova.source"))
    again = export_vm(ExportOptions(src=vm["vmx"], dest=dest, refresh=True))
    assert again["changed"] is False and again["current"] is True
    vmfactory.run(["qemu-io", "-f", "vmdk", "-c", "write -P 0x77 1M 64k", os.path.join(vm["folder"], "d.vmdk")])
    expected = str(tmp_path / "now.raw")
    vmfactory.run(["qemu-img", "convert", "-O", "raw", os.path.join(vm["folder"], "d.vmdk"), expected])
    assert export_vm(ExportOptions(src=vm["vmx"], dest=dest))["changed"] is False  # no refresh: left alone
    stale = export_vm(ExportOptions(src=vm["vmx"], dest=dest, refresh=True, check_mode=True))
    assert stale["changed"] is True and stale["stale"] is True
    redone = export_vm(ExportOptions(src=vm["vmx"], dest=dest, refresh=True))
    assert redone["changed"] and redone["stale"]
    ovacheck.assert_same_disk(expected, ovacheck.extract(dest, "Options_VM-disk1.vmdk", str(tmp_path)))
    assert sorted(os.listdir(vm["out"])) == [".r.ova.source", "r.ova"]
