# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Appliance authoring: product, vApp properties, EULA, annotation, deployment options, networks, extra config -
at export and on existing OVAs (ova_edit), read back by COT, the DMTF schema, ova_info and ova_verify."""
from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

from support import ovacheck, vmfactory
from support.ansiblerun import adhoc
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.edit import EditOptions, describe, edit_ova
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.verify import verify

OVF, RASD, VMW = ovacheck.OVF_NS, ovacheck.RASD_NS, "http://www.vmware.com/schema/ovf"

# the shapes of ova-compose's own configs (open-vmdk pytest/configs): product, categories, properties with types,
# qualifiers and per-configuration values, configurations with hardware, networks, extra configs, annotation
SPEC = {
    "product_sections": [{
        "product": "Example Appliance", "vendor": "Example Inc.", "version": "1.4.2", "full_version": "1.4.2-7",
        "product_url": "https://example.com/appliance", "vendor_url": "https://example.com",
        "info": "The appliance", "categories": {"net": "Networking", "sys": "System"},
        "transports": ["com.vmware.guestInfo", "iso"],
        "properties": {
            "hostname": {"type": "string", "value": "appliance", "user_configurable": True, "label": "Host name",
                         "description": "The appliance's host name", "category": "sys",
                         "qualifiers": ["MinLen(1)", "MaxLen(63)"]},
            "port": {"type": "uint16", "value": 8443, "user_configurable": True, "category": "net"},
            "role": {"type": "string", "value": "web", "qualifiers": 'ValueMap{"web","db"}',
                     "user_configurable": True},
            "admin.password": {"type": "string", "password": True, "user_configurable": True,
                               "label": "Admin password"},
            "debug": {"type": "boolean", "value": False},
            "workers": {"type": "uint8", "user_configurable": True,
                        "value": {"default": 4, "configurations": {"small": 2, "large": 8}}}}}],
    "annotation": {"text": "Stamped <&> \"appliance\"", "info": "Release notes"},
    "eula": ["First licence", "Second licence"],
    "configurations": {"small": {"label": "Small", "description": "2 CPUs, 2 GiB", "cpus": 2, "memory": 2048},
                       "large": {"label": "Large", "cpus": 8}},
    "default_configuration": "small",
    "networks": {"ethernet0": {"name": "Management", "description": "The management network"}},
    "extra_configs": {"guestinfo.appliance.role": "web", "disk.EnableUUID": {"value": "TRUE", "required": True}},
}


@pytest.fixture()
def vm(tmp_path, images):
    folder = tmp_path / "vm"
    folder.mkdir()
    vmfactory.convert(images["odd"], str(folder / "d.vmdk"), "monolithicSparse")
    vmx = vmfactory.write_vmx(str(folder / "vm.vmx"), "Appliance VM", [("scsi0:0", "d.vmdk")],
                              extra={"annotation": "Built by CI\nline two"})
    out = tmp_path / "out"
    out.mkdir()
    return {"vmx": vmx, "out": str(out), "raw": images["odd"], "folder": str(folder)}


def envelope_of(path: str):
    return ovacheck.read_ova(path)["envelope"]


def items(envelope, resource: int):
    return [i for i in envelope.iter(f"{{{OVF}}}Item") if i.find(f"{{{RASD}}}ResourceType").text == str(resource)]


def test_export_carries_every_section(vm, xsd):
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/", appliance=SPEC, codec="zlib"))
    envelope = envelope_of(result["dest"])
    xsd.validate(ovacheck.read_ova(result["dest"])["ovf"].decode())
    system = envelope.find(f"{{{OVF}}}VirtualSystem")
    order = [child.tag.split("}")[1] for child in system]
    assert order == ["Info", "Name", "AnnotationSection", "ProductSection", "EulaSection", "EulaSection",
                     "OperatingSystemSection", "VirtualHardwareSection"], order
    product = system.find(f"{{{OVF}}}ProductSection")
    assert [c.tag.split("}")[1] for c in product][:8] == ["Info", "Product", "Vendor", "Version", "FullVersion",
                                                          "ProductUrl", "VendorUrl", "Property"]
    props = {p.get(f"{{{OVF}}}key"): p for p in product.iter(f"{{{OVF}}}Property")}
    assert props["port"].get(f"{{{OVF}}}type") == "uint16" and props["port"].get(f"{{{OVF}}}value") == "8443"
    assert props["admin.password"].get(f"{{{OVF}}}password") == "true"
    assert props["hostname"].get(f"{{{OVF}}}qualifiers") == "MinLen(1),MaxLen(63)"
    assert {v.get(f"{{{OVF}}}configuration"): v.get(f"{{{OVF}}}value")
            for v in props["workers"].iter(f"{{{OVF}}}Value")} == {"small": "2", "large": "8"}
    # categories head their properties
    sequence = [c.text if c.tag.endswith("Category") else c.get(f"{{{OVF}}}key") for c in product
                if c.tag.endswith(("Category", "Property"))]
    assert sequence.index("Networking") < sequence.index("port") < sequence.index("System") < sequence.index("hostname")
    hardware = system.find(f"{{{OVF}}}VirtualHardwareSection")
    assert hardware.get(f"{{{OVF}}}transport") == "com.vmware.guestInfo iso"
    options = envelope.find(f"{{{OVF}}}DeploymentOptionSection")
    assert [(c.get(f"{{{OVF}}}id"), c.get(f"{{{OVF}}}default")) for c in options.iter(f"{{{OVF}}}Configuration")] \
        == [("small", "true"), ("large", None)]
    cpus = {i.get(f"{{{OVF}}}configuration"): i.find(f"{{{RASD}}}VirtualQuantity").text for i in items(envelope, 3)}
    memory = {i.get(f"{{{OVF}}}configuration"): i.find(f"{{{RASD}}}VirtualQuantity").text for i in items(envelope, 4)}
    assert cpus == {"small": "2", "large": "8"} and memory == {"large": "1024", "small": "2048"}, (cpus, memory)
    ids = [i.find(f"{{{RASD}}}InstanceID").text for i in envelope.iter(f"{{{OVF}}}Item")]
    assert len(ids) == len(set(ids))
    assert [n.get(f"{{{OVF}}}name") for n in envelope.iter(f"{{{OVF}}}Network")] == ["Management"]
    assert items(envelope, 10)[0].find(f"{{{RASD}}}Connection").text == "Management"
    extra = {e.get(f"{{{VMW}}}key"): (e.get(f"{{{VMW}}}value"), e.get(f"{{{OVF}}}required"))
             for e in hardware.iter(f"{{{VMW}}}ExtraConfig")}
    assert extra == {"guestinfo.appliance.role": ("web", "false"), "disk.EnableUUID": ("TRUE", "true")}
    assert system.find(f"{{{OVF}}}AnnotationSection/{{{OVF}}}Annotation").text == "Stamped <&> \"appliance\""
    checked = verify(result["dest"], deep=True, require_manifest=True)
    assert checked["ok"], checked["problems"]
    ovacheck.assert_same_disk(vm["raw"], ovacheck.extract(result["dest"], "Appliance_VM-disk1.vmdk", vm["out"]))


def test_cot_reads_what_we_wrote(vm):
    """COT (Cisco's Common OVF Tool) lists the product, properties, configurations and networks. It hashes SHA1
    whatever the manifest says and cannot read two ProductSections (its limits), so one section, SHA1."""
    cot = shutil.which("cot", path=os.path.dirname(sys.executable))
    assert cot, "COT is installed in the test virtualenv (scripts/requirements-test.txt)"
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/", appliance=SPEC, manifest="sha1"))
    done = subprocess.run([cot, "info", "--verbose", result["dest"]], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    out = done.stdout
    assert done.returncode == 0 and "ERROR" not in out, out
    for expected in ("Example Appliance", "Example Inc.", "1.4.2-7", "First licence", "Second licence",
                     "Stamped <&> \"appliance\"", "small (default)", "large", "Management",
                     "\"The management network\"", "com.vmware.guestInfo", "<hostname>", "Host name", "<port>",
                     "\"8443\"", "<admin.password>", "<workers>"):
        assert expected in out, (expected, out)
    profiles = [line.split() for line in out.splitlines() if line.strip().startswith(("small", "large"))]
    assert profiles[0][:5] == ["small", "(default)", "2", "2", "GiB"] and profiles[1][:3] == ["large", "8", "1"], out


def test_annotation_comes_from_the_vmx_unless_the_spec_says(vm):
    plain = envelope_of(export_vm(ExportOptions(src=vm["vmx"], dest=os.path.join(vm["out"], "a.ova")))["dest"])
    assert plain.find(f".//{{{OVF}}}AnnotationSection/{{{OVF}}}Annotation").text == "Built by CI\nline two"
    none = envelope_of(export_vm(ExportOptions(src=vm["vmx"], dest=os.path.join(vm["out"], "b.ova"),
                                               appliance={"annotation": ""}))["dest"])
    assert none.find(f".//{{{OVF}}}AnnotationSection") is None


def with_change(path: str, value):
    """SPEC with the value at a dotted path replaced (keys may hold dots: ['a', 'b.c'] as a list)."""
    spec = copy.deepcopy(SPEC)
    node = spec
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return spec


PROPS = ["product_sections", 0, "properties"]


@pytest.mark.parametrize("path, value, message", [
    (["colour"], "red", "appliance.colour: unknown key (known: product_sections,"),
    (PROPS + ["port", "value"], 70000, "appliance.product_sections[0].properties.port.value: 70000 does not fit uint16"),
    (PROPS + ["port", "type"], "uint12", "appliance.product_sections[0].properties.port.type: 'uint12' is not one of"),
    (PROPS + ["hostname", "value"], "", "properties.hostname.value: '' is shorter than MinLen(1)"),
    (PROPS + ["role", "value"], "cache", "properties.role.value: 'cache' is not one of ValueMap{\"web\",\"db\"}"),
    (PROPS + ["debug", "value"], "maybe", "properties.debug.value: must be true or false, not 'maybe'"),
    (PROPS + ["hostname", "category"], "storage",
     "properties.hostname.category: 'storage' is not declared in this product section's categories"),
    (PROPS + ["workers", "value"], {"medium": 3}, "properties.workers.value.medium: is not a declared configuration"),
    (["default_configuration"], "medium", "appliance.default_configuration: 'medium' is not a declared configuration"),
    (["product_sections", 0, "transports"], ["vmtools"],
     "appliance.product_sections[0].transports[0]: 'vmtools' is not one of iso, com.vmware.guestInfo"),
    (PROPS + ["bad key"], {"type": "string"}, "properties.bad key: 'bad key' is not a valid id"),
    (["configurations", "large", "cpus"], 0, "appliance.configurations.large.cpus: 0 is not a whole number"),
    (["networks", "ethernet7"], {"name": "x"}, "appliance.networks.ethernet7: no NIC (ethernetN) or network has"),
])
def test_bad_spec_fails_before_any_disk_is_read(vm, path, value, message):
    os.rename(os.path.join(vm["folder"], "d.vmdk"), os.path.join(vm["folder"], "moved.vmdk"))  # reading it would fail
    spec = with_change(path, value)
    with pytest.raises(OvatoolError) as raised:
        export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/", appliance=spec))
    assert message in str(raised.value), str(raised.value)
    assert os.listdir(vm["out"]) == [], "nothing was written"


def test_ova_edit_restamps_without_recompressing(vm, tmp_path):
    plain = export_vm(ExportOptions(src=vm["vmx"], dest=os.path.join(vm["out"], "plain.ova"), manifest="sha512"))
    before = ovacheck.read_ova(plain["dest"])
    spec = {"product": {"product": "Example Appliance", "version": "1.4.2"}, "eula": "Be nice."}
    stamped = edit_ova(EditOptions(src=plain["dest"], dest=os.path.join(vm["out"], "stamped.ova"), appliance=spec))
    assert stamped["changed"] and stamped["manifest"] == "sha512"
    after = ovacheck.read_ova(stamped["dest"])  # checks order and every manifest digest
    disk = "Appliance_VM-disk1.vmdk"
    assert after["manifest"][disk] == before["manifest"][disk], "the disk member is the same bytes"
    with tarfile.open(plain["dest"]) as a, tarfile.open(stamped["dest"]) as b:
        assert a.extractfile(disk).read() == b.extractfile(disk).read()
        assert a.getnames() == b.getnames()
    assert [e.text for e in after["envelope"].iter(f"{{{OVF}}}Version")] == ["1.4.2"]
    assert verify(stamped["dest"], deep=True, require_manifest=True)["ok"]
    again = edit_ova(EditOptions(src=stamped["dest"], appliance=spec))
    assert again["changed"] is False, "the same spec twice: no change"
    release = edit_ova(EditOptions(src=stamped["dest"], appliance={"product": {"product": "Example Appliance",
                                                                               "version": "1.4.3"}}))
    assert release["changed"] and "1.4.2" in release["diff"]["before"] and "1.4.3" in release["diff"]["after"]
    described = describe(stamped["dest"])
    assert described["product_sections"][0]["version"] == "1.4.3" and described["eulas"] == ["Be nice."]


def test_ova_edit_on_another_tools_ova_and_signing(vm, tmp_path):
    """An OVA laid out as other tools write it (manifest in the tag form, OVF 2.0 namespace, a certificate):
    restamped, its certificate dropped with a warning, or made again when a key is given."""
    plain = export_vm(ExportOptions(src=vm["vmx"], dest=os.path.join(vm["out"], "plain.ova")))
    with tarfile.open(plain["dest"]) as archive:
        members = [(m.name, archive.extractfile(m).read()) for m in archive.getmembers()]
    ovf_name, ovf_bytes = members[0]
    ovf_bytes = ovf_bytes.replace(b"http://schemas.dmtf.org/ovf/envelope/1", b"http://schemas.dmtf.org/ovf/envelope/2")
    rest = members[2:]
    mf = "".join(f"SHA256 ({n}) = {hashlib.sha256(d).hexdigest()}\n" for n, d in [(ovf_name, ovf_bytes)] + rest)
    foreign = str(tmp_path / "foreign.ova")
    with tarfile.open(foreign, "w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in [(ovf_name, ovf_bytes), ("Appliance_VM.mf", mf.encode()),
                           ("Appliance_VM.cert", b"SHA256(Appliance_VM.mf)= 00\n")] + rest:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    result = edit_ova(EditOptions(src=foreign, appliance={"product": {"product": "Restamped"}}))
    assert result["changed"] and any("Appliance_VM.cert signed the old manifest" in w for w in result["warnings"])
    checked = verify(foreign, require_manifest=True, deep=True)
    assert checked["ok"] and checked["ovf_version"] == "2.0" and checked["signature"] == {"present": False}, checked
    key, cert = str(tmp_path / "key.pem"), str(tmp_path / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=release signer"], check=True, capture_output=True)
    signed = edit_ova(EditOptions(src=foreign, appliance={"product": {"product": "Signed"}}, private_key=key,
                                  certificate=cert))
    assert signed["signed"]
    checked = verify(foreign, require_manifest=True)
    assert checked["ok"] and checked["signature"]["valid"] and "release signer" in checked["signature"]["subject"]


def test_ova_edit_and_ova_info_modules(vm, tmp_path):
    plain = export_vm(ExportOptions(src=vm["vmx"], dest=os.path.join(vm["out"], "plain.ova")))
    args = {"path": plain["dest"], "appliance": {"product": {"product": "Example", "version": "2.0"},
                                                 "configurations": {"one": {"label": "One", "cpus": 1}}}}
    check = adhoc(tmp_path, "ovatool.vmware.ova_edit", args, check=True, options=("--diff",))
    assert check["_rc"] == 0 and check["changed"] is True and "<ovf:Version>2.0</ovf:Version>" in check["_stdout"]
    assert verify(plain["dest"])["ok"] and describe(plain["dest"])["product_sections"] == [], "check mode wrote"
    done = adhoc(tmp_path, "ovatool.vmware.ova_edit", args)
    assert done["_rc"] == 0 and done["changed"] is True, done["_stdout"]
    again = adhoc(tmp_path, "ovatool.vmware.ova_edit", args)
    assert again["_rc"] == 0 and again["changed"] is False
    info = adhoc(tmp_path, "ovatool.vmware.ova_info", {"path": plain["dest"]})
    assert info["_rc"] == 0 and info["appliance"]["product_sections"][0]["version"] == "2.0", info["_stdout"]
    assert info["appliance"]["configurations"] == [{"id": "one", "label": "One", "description": "One",
                                                    "default": False}]
    bad = adhoc(tmp_path, "ovatool.vmware.ova_edit", dict(args, appliance={"product": {"colour": "red"}}))
    assert bad["_rc"] != 0 and "appliance.product.colour: unknown key" in bad["msg"]


def test_verify_reports_properties_that_do_not_fit(vm, tmp_path):
    result = export_vm(ExportOptions(src=vm["vmx"], dest=os.path.join(vm["out"], "a.ova"), appliance=SPEC))
    with tarfile.open(result["dest"]) as archive:
        members = [(m.name, archive.extractfile(m).read()) for m in archive.getmembers()]
    text = members[0][1].decode()
    text = text.replace('ovf:value="8443"', 'ovf:value="99999"').replace('ovf:transport="com.vmware.guestInfo iso"',
                                                                         'ovf:transport="com.vmware.guestInfo ftp"')
    text = text.replace('<ovf:Configuration ovf:id="large">', '<ovf:Configuration ovf:default="true" ovf:id="large">')
    ovf_bytes = text.encode()
    mf = "".join(f"SHA256({n})= {hashlib.sha256(d).hexdigest()}\n" for n, d in [(members[0][0], ovf_bytes)] + members[2:])
    bad = str(tmp_path / "bad.ova")
    with tarfile.open(bad, "w", format=tarfile.GNU_FORMAT) as archive:
        for name, data in [(members[0][0], ovf_bytes), (members[1][0], mf.encode())] + members[2:]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    found = verify(bad)["problems"]
    assert "ProductSection property 'port' ovf:value: 99999 does not fit uint16" in found, found
    assert "VirtualHardwareSection: ovf:transport 'ftp' is not one of iso, com.vmware.guestInfo" in found, found
    assert any("2 configurations are marked default" in p for p in found), found


def test_command_export_edit_info(vm, tmp_path):
    ovatool = shutil.which("ovatool", path=os.path.dirname(sys.executable))
    spec_file = tmp_path / "appliance.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    done = subprocess.run([ovatool, "export", vm["vmx"], "-o", vm["out"] + "/", "--appliance", str(spec_file),
                           "--json"], capture_output=True, universal_newlines=True, check=False)
    assert done.returncode == 0, done.stderr
    dest = json.loads(done.stdout)["dest"]
    info = subprocess.run([ovatool, "info", dest], capture_output=True, universal_newlines=True, check=False)
    assert info.returncode == 0 and "product: Example Appliance 1.4.2 by Example Inc." in info.stdout, info.stdout
    assert "configuration: small (Small) default" in info.stdout and "network: Management" in info.stdout
    per_config = tmp_path / "per-config.yaml"  # a property with values per configuration only: no default value
    per_config.write_text(yaml.safe_dump(dict(SPEC, product_sections=[dict(SPEC["product_sections"][0], properties={
        "workers": {"type": "uint8", "value": {"small": 2, "large": 8}}})])))
    again = tmp_path / "per-config.ova"
    edited = subprocess.run([ovatool, "edit", dest, "-o", str(again), "--appliance", str(per_config)],
                            capture_output=True, universal_newlines=True, check=False)
    assert edited.returncode == 0, edited.stderr
    info = subprocess.run([ovatool, "info", str(again)], capture_output=True, universal_newlines=True, check=False)
    assert "workers (uint8): (no default), large=8, small=2" in info.stdout, info.stdout
    stamp = tmp_path / "stamp.yaml"
    stamp.write_text("product:\n  product: Example Appliance\n  version: 1.4.3\n")
    edited = subprocess.run([ovatool, "edit", dest, "--appliance", str(stamp), "--diff"], capture_output=True,
                            universal_newlines=True, check=False)
    assert edited.returncode == 0 and re.search(r"^\+\s*<ovf:Version>1\.4\.3</ovf:Version>$", edited.stdout, re.M) \
        and re.search(r"^-\s*<ovf:Version>1\.4\.2</ovf:Version>$", edited.stdout, re.M), edited.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text("product: {port: 1}\n")
    refused = subprocess.run([ovatool, "edit", dest, "--appliance", str(broken)], capture_output=True,
                             universal_newlines=True, check=False)
    assert refused.returncode == 1 and "appliance.product.port: unknown key" in refused.stderr
