# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""formats/appliance_write.py against DSP0243: ProductSection (fields in schema order, properties with ovf:key,
ovf:type, ovf:qualifiers, ovf:userConfigurable, ovf:password, per-configuration values, categories), EulaSection,
DeploymentOptionSection before the VirtualSystem, CPU and memory Items per ovf:configuration, named networks."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats import ovf
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.appliance import parse_appliance
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.appliance_write import apply_appliance
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.vmx import load_vm

from support.vmfactory import write_vmx

O = "{http://schemas.dmtf.org/ovf/envelope/1}"
NS = {"ovf": O[1:-1], "rasd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"}
SPEC = {
    "product_sections": [{
        "product": "Example", "vendor": "Example Inc.", "version": "1.4", "full_version": "1.4.2-7",
        "info": "The appliance", "categories": {"net": "Networking"},
        "properties": {
            "hostname": {"type": "string", "value": "app", "user_configurable": True, "label": "Host name",
                         "qualifiers": ["MinLen(1)", "MaxLen(63)"]},
            "port": {"type": "uint16", "value": 8443, "user_configurable": True, "category": "net"},
            "admin.password": {"type": "string", "password": True, "user_configurable": True},
            "workers": {"type": "uint8", "value": {"default": 4, "configurations": {"large": 8}}}}}],
    "eula": ["The licence <&>"],
    "configurations": {"small": {"label": "Small", "cpus": 2, "memory": 2048}, "large": {"label": "Large", "cpus": 8}},
    "default_configuration": "small",
    "networks": {"ethernet0": {"name": "Management", "description": "The management network"}},
}


@pytest.fixture()
def envelope(tmp_path):
    vmx = write_vmx(str(tmp_path / "a.vmx"), "A", [("scsi0:0", "a.vmdk")])
    disks = [ovf.OvfDisk("scsi0", 0, "A-disk1.vmdk", "file1", "vmdisk1", 1 << 30, 1, 1)]
    built = ovf.build_envelope(load_vm(vmx), "A", disks)
    apply_appliance(built, parse_appliance(SPEC))
    return ET.fromstring(ovf.render(built))


def test_product_section_and_its_properties(envelope):
    product = envelope.find("ovf:VirtualSystem/ovf:ProductSection", NS)
    tags = [child.tag[len(O):] for child in product]
    assert tags[:6] == ["Info", "Product", "Vendor", "Version", "FullVersion", "Property"], "schema order"
    assert product.find("ovf:Product", NS).text == "Example" and product.find("ovf:FullVersion", NS).text == "1.4.2-7"
    props = {p.get(O + "key"): p for p in product.findall("ovf:Property", NS)}
    assert set(props) == {"hostname", "port", "admin.password", "workers"}
    assert props["hostname"].get(O + "type") == "string" and props["hostname"].get(O + "value") == "app"
    assert props["hostname"].get(O + "qualifiers") == "MinLen(1),MaxLen(63)"
    assert props["hostname"].get(O + "userConfigurable") == "true"
    assert props["hostname"].find("ovf:Label", NS).text == "Host name"
    assert props["admin.password"].get(O + "password") == "true" and props["admin.password"].get(O + "value") is None
    assert props["port"].get(O + "type") == "uint16" and props["port"].get(O + "value") == "8443"
    assert props["workers"].get(O + "userConfigurable") == "false"
    per = [(v.get(O + "configuration"), v.get(O + "value")) for v in props["workers"].findall("ovf:Value", NS)]
    assert per == [("large", "8")]
    category = tags.index("Category")
    assert product[category].text == "Networking" and product[category + 1].get(O + "key") == "port", \
        "a categorised property follows its Category"


def test_eula_deployment_options_and_networks(envelope):
    system = envelope.find("ovf:VirtualSystem", NS)
    assert system.find("ovf:EulaSection/ovf:License", NS).text == "The licence <&>"
    sections = [child.tag[len(O):] for child in envelope]
    assert sections.index("DeploymentOptionSection") < sections.index("VirtualSystem"), "an Envelope-level section"
    configs = envelope.findall("ovf:DeploymentOptionSection/ovf:Configuration", NS)
    assert [(c.get(O + "id"), c.get(O + "default")) for c in configs] == [("small", "true"), ("large", None)]
    assert [c.find("ovf:Label", NS).text for c in configs] == ["Small", "Large"]
    hardware = system.find("ovf:VirtualHardwareSection", NS)
    cpus = [(i.get(O + "configuration"), i.find("rasd:VirtualQuantity", NS).text) for i in hardware.findall("ovf:Item", NS)
            if i.find("rasd:ResourceType", NS).text == "3"]
    memory = [(i.get(O + "configuration"), i.find("rasd:VirtualQuantity", NS).text)
              for i in hardware.findall("ovf:Item", NS) if i.find("rasd:ResourceType", NS).text == "4"]
    assert sorted(cpus) == [("large", "8"), ("small", "2")]
    assert sorted(memory) == [("large", "1024"), ("small", "2048")], "large keeps the VM's memory"
    ids = [i.find("rasd:InstanceID", NS).text for i in hardware.findall("ovf:Item", NS)]
    assert len(ids) == len(set(ids))
    assert [n.get(O + "name") for n in envelope.findall("ovf:NetworkSection/ovf:Network", NS)] == ["Management"]
    nic = next(i for i in hardware.findall("ovf:Item", NS) if i.find("rasd:ResourceType", NS).text == "10")
    assert nic.find("rasd:Connection", NS).text == "Management"


def test_the_stamped_envelope_is_valid_against_the_dmtf_schema(envelope, xsd):
    xsd.validate(ET.tostring(envelope).decode())
