# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""formats/ovf.py against DSP0243 (OVF 1.1) and the CIM classes it uses: References, DiskSection with exact
capacities, NetworkSection, the VirtualSystem's hardware as RASD items (resource types, addresses, parents),
names escaped; validated against the DMTF schema where the shared corpus has it."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats import ovf
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.vmx import load_vm

from support.vmfactory import write_vmx

NS = {"ovf": "http://schemas.dmtf.org/ovf/envelope/1",
      "rasd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData",
      "vssd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData",
      "vmw": "http://www.vmware.com/schema/ovf"}
OVF = "{http://schemas.dmtf.org/ovf/envelope/1}"
GIB = 1 << 30


@pytest.fixture()
def envelope(tmp_path):
    vmx = write_vmx(str(tmp_path / "app.vmx"), 'Web <&> "App"', [("scsi0:0", "a.vmdk"), ("sata0:1", "b.vmdk")],
                    extra={"memsize": "3072", "numvcpus": "4", "cpuid.coresPerSocket": "2", "firmware": "efi"})
    disks = [ovf.OvfDisk("scsi0", 0, "App-disk1.vmdk", "file1", "vmdisk1", 8 * GIB, 1000, 900),
             ovf.OvfDisk("sata0", 1, "App-disk2.vmdk", "file2", "vmdisk2", GIB + 512, 10, 9)]
    built = ovf.build_envelope(load_vm(vmx), 'Web <&> "App"', disks)
    return ET.fromstring(ovf.render(built))


def items(envelope):
    found = {}
    for item in envelope.findall("ovf:VirtualSystem/ovf:VirtualHardwareSection/ovf:Item", NS):
        fields = {child.tag.split("}")[1]: child.text for child in item}
        found.setdefault(fields["ResourceType"], []).append(fields)
    return found


def test_references_and_disks_are_exact(envelope):
    files = envelope.findall("ovf:References/ovf:File", NS)
    assert [(f.get(OVF + "href"), f.get(OVF + "id"), f.get(OVF + "size")) for f in files] == [
        ("App-disk1.vmdk", "file1", "900"), ("App-disk2.vmdk", "file2", "9")]
    disks = envelope.findall("ovf:DiskSection/ovf:Disk", NS)
    assert [(d.get(OVF + "capacity"), d.get(OVF + "capacityAllocationUnits")) for d in disks] == [
        ("8", "byte * 2^30"), (str(GIB + 512), "byte")], "the largest binary unit that divides it, never rounded"
    assert all(d.get(OVF + "format") == "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
               for d in disks)
    assert [d.get(OVF + "populatedSize") for d in disks] == ["1000", "10"]


def test_the_virtual_system_and_its_hardware(envelope):
    system = envelope.find("ovf:VirtualSystem", NS)
    assert system.find("ovf:Name", NS).text == 'Web <&> "App"', "escaped in the XML, the same text read back"
    assert system.find("ovf:VirtualHardwareSection/ovf:System/vssd:VirtualSystemType", NS).text == "vmx-19"
    os_section = system.find("ovf:OperatingSystemSection", NS)
    assert os_section.get("{http://www.vmware.com/schema/ovf}osType") == "ubuntu64Guest"
    assert os_section.get(OVF + "id") == "94", "CIM_OperatingSystem 94: Ubuntu 64-bit"
    found = items(envelope)
    # CIM_ResourceAllocationSettingData ResourceType: 3 processor, 4 memory, 6 SCSI HBA, 20 SATA, 10 NIC, 17 disk
    assert found["3"][0]["VirtualQuantity"] == "4" and found["4"][0]["VirtualQuantity"] == "3072"
    assert found["4"][0]["AllocationUnits"] == "byte * 2^20"
    scsi, = found["6"]
    sata, = found["20"]
    assert scsi["ResourceSubType"] == "lsilogic" and sata["ResourceSubType"] == "vmware.sata.ahci"
    by_id = {fields["InstanceID"]: fields for group in found.values() for fields in group}
    assert len(by_id) == sum(len(group) for group in found.values()), "InstanceIDs are unique"
    disks = {fields["HostResource"]: fields for fields in found["17"]}
    assert disks["ovf:/disk/vmdisk1"]["Parent"] == scsi["InstanceID"] and disks["ovf:/disk/vmdisk1"]["AddressOnParent"] == "0"
    assert disks["ovf:/disk/vmdisk2"]["Parent"] == sata["InstanceID"] and disks["ovf:/disk/vmdisk2"]["AddressOnParent"] == "1"
    nic, = found["10"]
    assert nic["ResourceSubType"] == "VmxNet3" and nic["Connection"] == "nat"
    config = {c.get("{http://www.vmware.com/schema/ovf}key"): c.get("{http://www.vmware.com/schema/ovf}value")
              for c in system.findall("ovf:VirtualHardwareSection/vmw:Config", NS)}
    assert config["firmware"] == "efi"
    networks = [n.get(OVF + "name") for n in envelope.findall("ovf:NetworkSection/ovf:Network", NS)]
    assert networks == ["nat"]


def test_the_envelope_is_valid_against_the_dmtf_schema(envelope, xsd):
    xsd.validate(ET.tostring(envelope).decode())


@pytest.mark.parametrize("capacity,expected", [(0, (0, "byte")), (1 << 20, (1, "byte * 2^20")),
                                               (3 << 10, (3, "byte * 2^10")), (5 * GIB, (5, "byte * 2^30")),
                                               (GIB + 1, (GIB + 1, "byte"))])
def test_capacity_units(capacity, expected):
    assert ovf.capacity_units(capacity) == expected
