# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Export real disks of every supported input type and prove them equal with qemu-img."""
from __future__ import annotations

import os
import tarfile

import pytest

from support import ovacheck, vmfactory
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm

MiB = 1024 * 1024


def make_disk(raw: str, folder: str, name: str, kind: str) -> str:
    if kind == "vmfs":
        return os.path.basename(vmfactory.make_vmfs(raw, folder, name))
    target = os.path.join(folder, f"{name}.vmdk")
    vmfactory.convert(raw, target, kind)
    return os.path.basename(target)


def export_and_check(vmx: str, out_dir: str, raws, xsd=None, **options):
    os.makedirs(out_dir, exist_ok=True)
    result = export_vm(ExportOptions(src=vmx, dest=out_dir + "/", **options))
    assert result["changed"] is True
    ova = ovacheck.read_ova(result["dest"])
    assert os.path.getsize(result["dest"]) == result["size"]
    if xsd is not None:
        xsd.validate(ova["ovf"].decode("utf-8"))
    extract_dir = os.path.join(out_dir, "extracted")
    os.makedirs(extract_dir, exist_ok=True)
    vmdks = [n for n in ova["names"] if n.endswith(".vmdk")]
    assert len(vmdks) == len(raws)
    for name, raw in zip(vmdks, raws):
        ovacheck.assert_same_disk(raw, ovacheck.extract(result["dest"], name, extract_dir))
    return result, ova


@pytest.mark.parametrize("kind", ["monolithicSparse", "twoGbMaxExtentSparse", "monolithicFlat",
                                  "twoGbMaxExtentFlat", "vmfs"])
@pytest.mark.parametrize("image", ["odd", "gappy"])
def test_roundtrip_each_input_type(tmp_path, images, xsd, kind, image):
    raw = images[image]
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()
    disk = make_disk(raw, str(vm_dir), "disk", kind)
    vmx = vmfactory.write_vmx(str(vm_dir / "vm.vmx"), f"rt {kind} {image}", [("scsi0:0", disk)])
    result, ova = export_and_check(vmx, str(tmp_path / "out"), [raw], xsd)
    disk_result = result["disks"][0]
    assert disk_result["create_type"] == kind
    assert disk_result["capacity_bytes"] == os.path.getsize(raw)
    if kind != "monolithicFlat" or image == "gappy":
        # sparse inputs and holes in flat files: far less is read than the capacity
        assert disk_result["allocated_bytes"] < os.path.getsize(raw) * 0.6
    disk_el = ova["envelope"].find(".//{%s}Disk" % ovacheck.OVF_NS)
    assert ovacheck.disk_capacity(disk_el) == os.path.getsize(raw)


def test_several_disks_of_different_formats(tmp_path, images, xsd):
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()
    layout = [("scsi0:0", "monolithicSparse", images["odd"]), ("sata0:1", "twoGbMaxExtentFlat", images["gappy"]),
              ("nvme0:0", "vmfs", images["odd"]), ("ide0:0", "monolithicFlat", images["odd"])]
    disks = [(address, make_disk(raw, str(vm_dir), f"d{i}", kind)) for i, (address, kind, raw) in enumerate(layout)]
    vmx = vmfactory.write_vmx(str(vm_dir / "multi.vmx"), "Multi Disk <VM> & \"quotes\"", disks)
    # the VMX's controllers are listed scsi, sata, nvme, ide: disks come out in that order
    result, ova = export_and_check(vmx, str(tmp_path / "out"), [entry[2] for entry in layout], xsd, threads=2)
    assert [d["controller"] for d in result["disks"]] == ["scsi0", "sata0", "nvme0", "ide0"]
    assert os.path.basename(result["dest"]) == "Multi_Disk_VM_quotes.ova"
    name = ova["envelope"].find(".//{%s}VirtualSystem/{%s}Name" % (ovacheck.OVF_NS, ovacheck.OVF_NS)).text
    assert name == 'Multi Disk <VM> & "quotes"'
    items = ovacheck.disk_items(ova["envelope"])
    assert [i.findtext("{%s}AddressOnParent" % ovacheck.RASD_NS) for i in items] == ["0", "1", "0", "0"]


def test_whole_archive_layout(tmp_path, images):
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()
    disk = make_disk(images["odd"], str(vm_dir), "disk", "monolithicSparse")
    vmx = vmfactory.write_vmx(str(vm_dir / "vm.vmx"), "Layout", [("scsi0:0", disk)])
    result = export_vm(ExportOptions(src=vmx, dest=str(tmp_path / "layout.ova"), manifest="sha512"))
    with tarfile.open(result["dest"]) as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == ["Layout.ovf", "Layout.mf", "Layout-disk1.vmdk"]
    assert all(m.mode == 0o644 and m.uid == 0 for m in members)
    ova = ovacheck.read_ova(result["dest"])
    assert ova["algorithm"] == "sha512"
    assert result["digests"] == ova["manifest"]
    assert sorted(os.listdir(str(tmp_path))) == [".layout.ova.source", "layout.ova", "vm"]


def test_empty_disk_and_all_data_disk(tmp_path):
    """Edge cases for the grain writer: nothing allocated at all, and every grain non-zero."""
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()
    empty = str(tmp_path / "empty.raw")
    with open(empty, "wb") as handle:
        handle.truncate(70 * MiB)
    full = str(tmp_path / "full.raw")
    with open(full, "wb") as handle:
        block = bytes(range(256)) * 4096
        for i in range(33 * MiB // len(block)):  # 33 MiB: just over one grain-table span
            handle.write(block[i % 7:] + block[:i % 7])
    disks = [("scsi0:0", make_disk(empty, str(vm_dir), "empty", "monolithicSparse")),
             ("scsi0:1", make_disk(full, str(vm_dir), "full", "monolithicFlat"))]
    vmx = vmfactory.write_vmx(str(vm_dir / "vm.vmx"), "Edges", disks)
    result = export_and_check(vmx, str(tmp_path / "out"), [empty, full])[0]
    assert result["disks"][0]["populated_bytes"] == 0
    assert result["disks"][1]["populated_bytes"] == os.path.getsize(full)


def test_third_party_images_from_the_corpus(corpus, tmp_path):
    """VMDKs written by other tools (vmdk-rs, dfvfs, Proxmox): our export equals qemu-img's reading of them."""
    import glob

    checked = 0
    for image in sorted(glob.glob(os.path.join(corpus, "images", "*", "*.vmdk"))):
        if image.endswith(("-s001.vmdk", "-flat.vmdk", "-000001.vmdk")):
            continue  # extent files, and a delta whose file the corpus does not have
        folder = tmp_path / f"vm{checked}"
        folder.mkdir()
        for sibling in glob.glob(os.path.join(os.path.dirname(image), "*")):
            os.symlink(sibling, str(folder / os.path.basename(sibling)))
        expected = str(folder / "expected.raw")
        vmfactory.run(["qemu-img", "convert", "-O", "raw", image, expected])
        vmx = vmfactory.write_vmx(str(folder / "c.vmx"), "Corpus", [("ide0:0", os.path.basename(image))])
        result, _ova = export_and_check(vmx, str(folder / "out"), [expected])
        assert result["disks"][0]["capacity_bytes"] == os.path.getsize(expected)
        checked += 1
    assert checked >= 6
