# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The OVF descriptor, built with ElementTree (never by pasting strings).

Layout and item shapes follow what OVF Tool writes (docs/formats.md, OVF)
and DSP0243 / dsp8023_1.1.1.xsd: References, DiskSection, NetworkSection,
then one VirtualSystem with its OperatingSystemSection and
VirtualHardwareSection. RASD children are written in the schema's
(alphabetical) order.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import OvatoolError
from .guestos import map_guest_os
from .vmx import Controller, VirtualMachine

OVF = "http://schemas.dmtf.org/ovf/envelope/1"
OVF2 = "http://schemas.dmtf.org/ovf/envelope/2"  # DMTF OVF 2.0 (DSP0243 2.x): same element names
OVF_NAMESPACES = (OVF, OVF2)
# OVF 0.9 (VMware's pre-standard namespace, and the draft DMTF one): refused, never half-read
OLD_OVF_NAMESPACES = ("http://www.vmware.com/schema/ovf/1/envelope", "http://schemas.dmtf.org/ovf/1/envelope")
MAX_OVF_BYTES = 16 * 1024 * 1024
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
VMW = "http://www.vmware.com/schema/ovf"
CIM = "http://schemas.dmtf.org/wbem/wscim/1/common"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NAMESPACES = {"ovf": OVF, "rasd": RASD, "vssd": VSSD, "vmw": VMW, "cim": CIM, "xsi": XSI}
STREAM_FORMAT = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

for _prefix, _uri in NAMESPACES.items():
    ET.register_namespace(_prefix, _uri)

RASD_ORDER = (
    "Address", "AddressOnParent", "AllocationUnits", "AutomaticAllocation", "AutomaticDeallocation",
    "Caption", "Connection", "ConsumerVisibility", "Description", "ElementName", "HostResource",
    "InstanceID", "Limit", "MappingBehavior", "OtherResourceType", "Parent", "PoolID", "Reservation",
    "ResourceSubType", "ResourceType", "VirtualQuantity", "VirtualQuantityUnits", "Weight",
)

SCSI_SUBTYPES = {"lsilogic": "lsilogic", "lsisas1068": "lsilogicsas", "pvscsi": "VirtualSCSI",
                 "buslogic": "buslogic"}
NIC_SUBTYPES = {"e1000": "E1000", "e1000e": "E1000e", "vmxnet3": "VmxNet3", "vmxnet2": "VmxNet2",
                "vmxnet": "VmxNet", "vlance": "PCNet32"}
SOUND_SUBTYPES = {"es1371": "vmware.soundcard.ensoniq1371", "hdaudio": "vmware.soundcard.hdaudio",
                  "sb16": "vmware.soundcard.sb16"}


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def xml_text(value: object) -> str:
    """Text an XML 1.0 document can hold: characters it forbids (NUL, escapes...) become U+FFFD.

    ElementTree escapes <, & and quotes, but writes control characters as they are, which makes the
    document unreadable; VMX values (display names, extra keys) can carry them through |XX escapes.
    """
    return _XML_INVALID.sub("\ufffd", str(value))


def _q(ns: str, tag: str) -> str:
    return f"{{{NAMESPACES[ns]}}}{tag}"


EXPORT_FLAGS = ("mac", "uuid", "extraconfig")

# VMX keys that the OVF already expresses, or that only make sense on the source host
_NOT_EXTRA = re.compile(
    r"^(\.encoding|config\.version|virtualhw\.version|displayname|guestos|numvcpus|cpuid\.corespersocket|memsize"
    r"|firmware|uefi\.secureboot\.enabled|nvram|uuid\..*|vc\.uuid|annotation|extendedconfigfile|checkpoint\..*"
    r"|(scsi|sata|nvme|ide)\d+.*|ethernet\d+.*|usb.*|ehci.*|sound\..*|vmci0\..*|floppy\d+.*|serial\d+.*"
    r"|parallel\d+.*|sharedfolder.*|encryption\..*|vmx\.encryptiontype|vtpm\..*|filesearchpath|migrate\..*"
    r"|gui\..*|vmotion\..*|cleanshutdown|softpoweroff|tools\.remindinstall|hgfs\..*|isolation\..*"
    r"|mks\..*|svga\..*|vmxstats\..*|toolsinstallmanager\..*|monitor\.phys_bits_used|sched\..*"
    r"|numa\..*|nvram\..*|remotedisplay\..*|snapshot\..*|tools\.upgrade\..*|policy\..*)$")


@dataclass
class OvfOptions:
    """What the caller chose beyond the VM itself."""

    hardware_version: Optional[int] = None  # cap (OVF Tool's --maxVirtualHardwareVersion)
    flags: Tuple[str, ...] = ()  # subset of EXPORT_FLAGS
    nvram_file_id: Optional[str] = None
    cdrom_files: Dict[int, str] = field(default_factory=dict)  # CD-ROM index -> file id of its ISO


def vmx_uuid(value: str) -> str:
    """VMX "56 4d 12 ... -ab cd ..." -> 564d12..-....-....-....-............"""
    digits = re.sub(r"[^0-9a-fA-F]", "", value or "")
    if len(digits) != 32:
        return ""
    d = digits.lower()
    return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"


@dataclass
class OvfDisk:
    """One exported disk as the OVF names it."""

    controller: str  # "scsi0"
    unit: int
    href: str
    file_id: str
    disk_id: str
    capacity: int  # bytes
    populated: int  # bytes of data
    file_size: int  # bytes of the .vmdk member


def capacity_units(capacity: int) -> Tuple[int, str]:
    """Exact capacity with the largest binary unit that divides it (never rounded)."""
    for power in (30, 20, 10):
        if capacity and capacity % (1 << power) == 0:
            return capacity >> power, f"byte * 2^{power}"
    return capacity, "byte"


class _Items:
    def __init__(self, parent: ET.Element) -> None:
        self.parent = parent
        self.next_id = 1

    def add(self, fields: Dict[str, object], required: bool = True,
            config: Sequence[Tuple[str, str]] = ()) -> int:
        instance = self.next_id
        self.next_id += 1
        item = ET.SubElement(self.parent, _q("ovf", "Item"))
        if not required:
            item.set(_q("ovf", "required"), "false")
        values = dict(fields, InstanceID=instance)
        for name in RASD_ORDER:
            if name in values and values[name] is not None:
                ET.SubElement(item, _q("rasd", name)).text = xml_text(values[name])
        for key, value in config:
            _vmw_config(item, key, value)
        return instance


def _vmw_config(parent: ET.Element, key: str, value: str, tag: str = "Config") -> None:
    ET.SubElement(parent, _q("vmw", tag), {_q("ovf", "required"): "false", _q("vmw", "key"): xml_text(key),
                                           _q("vmw", "value"): xml_text(value)})


def _controller_fields(ctrl: Controller) -> Dict[str, object]:
    if ctrl.kind == "scsi":
        return {"Address": ctrl.bus, "Description": "SCSI Controller", "ElementName": f"scsiController{ctrl.bus}",
                "ResourceSubType": SCSI_SUBTYPES.get(ctrl.virtual_dev, "lsilogic"), "ResourceType": 6}
    if ctrl.kind == "sata":
        return {"Address": ctrl.bus, "Description": "SATA Controller", "ElementName": f"sataController{ctrl.bus}",
                "ResourceSubType": "vmware.sata.ahci", "ResourceType": 20}
    if ctrl.kind == "nvme":
        return {"Address": ctrl.bus, "Description": "NVME Controller", "ElementName": f"nvmeController{ctrl.bus}",
                "ResourceSubType": "vmware.nvme.controller", "ResourceType": 20}
    return {"Address": ctrl.bus, "Description": "IDE Controller", "ElementName": f"ideController{ctrl.bus}",
            "ResourceType": 5}


def build_envelope(vm: VirtualMachine, name: str, disks: List[OvfDisk],
                   extra_files: Sequence[Tuple[str, str, int]] = (),
                   options: Optional[OvfOptions] = None) -> ET.Element:
    """The OVF Envelope element for ``vm`` with the given exported disks (and other files)."""
    options = options or OvfOptions()
    hardware_version = vm.hardware_version
    if options.hardware_version:
        hardware_version = min(hardware_version, options.hardware_version)
    env = ET.Element(_q("ovf", "Envelope"))
    refs = ET.SubElement(env, _q("ovf", "References"))
    files = [(d.href, d.file_id, d.file_size) for d in disks] + list(extra_files)
    for href, file_id, size in files:
        ET.SubElement(refs, _q("ovf", "File"),
                      {_q("ovf", "href"): href, _q("ovf", "id"): file_id, _q("ovf", "size"): str(size)})
    if disks:
        section = ET.SubElement(env, _q("ovf", "DiskSection"))
        ET.SubElement(section, _q("ovf", "Info")).text = "Virtual disk information"
        for disk in disks:
            amount, units = capacity_units(disk.capacity)
            ET.SubElement(section, _q("ovf", "Disk"), {
                _q("ovf", "capacity"): str(amount), _q("ovf", "capacityAllocationUnits"): units,
                _q("ovf", "diskId"): disk.disk_id, _q("ovf", "fileRef"): disk.file_id,
                _q("ovf", "format"): STREAM_FORMAT, _q("ovf", "populatedSize"): str(disk.populated)})
    networks: List[str] = []
    for nic in vm.nics:
        if nic.network not in networks:
            networks.append(nic.network)
    if networks:
        section = ET.SubElement(env, _q("ovf", "NetworkSection"))
        ET.SubElement(section, _q("ovf", "Info")).text = "The list of logical networks"
        for network in networks:
            net = ET.SubElement(section, _q("ovf", "Network"), {_q("ovf", "name"): xml_text(network)})
            ET.SubElement(net, _q("ovf", "Description")).text = xml_text(f"The {network} network")

    system = ET.SubElement(env, _q("ovf", "VirtualSystem"), {_q("ovf", "id"): "vm"})
    ET.SubElement(system, _q("ovf", "Info")).text = "A virtual machine"
    name = xml_text(name)
    ET.SubElement(system, _q("ovf", "Name")).text = name
    vim_id, cim_id = map_guest_os(vm.guest_os)
    os_section = ET.SubElement(system, _q("ovf", "OperatingSystemSection"),
                               {_q("ovf", "id"): str(cim_id), _q("vmw", "osType"): vim_id})
    ET.SubElement(os_section, _q("ovf", "Info")).text = "The kind of installed guest operating system"

    hardware = ET.SubElement(system, _q("ovf", "VirtualHardwareSection"))
    ET.SubElement(hardware, _q("ovf", "Info")).text = "Virtual hardware requirements"
    sys_el = ET.SubElement(hardware, _q("ovf", "System"))
    for tag, text in (("ElementName", "Virtual Hardware Family"), ("InstanceID", "0"),
                      ("VirtualSystemIdentifier", name), ("VirtualSystemType", f"vmx-{hardware_version:02d}")):
        ET.SubElement(sys_el, _q("vssd", tag)).text = text
    _add_items(_Items(hardware), vm, disks, "mac" in options.flags, options.cdrom_files)
    if vm.firmware == "efi":
        _vmw_config(hardware, "firmware", "efi")
        if vm.secure_boot:
            _vmw_config(hardware, "bootOptions.efiSecureBootEnabled", "true")
    if "uuid" in options.flags and vmx_uuid(vm.get("uuid.bios")):
        _vmw_config(hardware, "uuid", vmx_uuid(vm.get("uuid.bios")))
    if options.nvram_file_id:
        _vmw_config(hardware, "nvram", f"ovf:/file/{options.nvram_file_id}", tag="ExtraConfig")
    if "extraconfig" in options.flags:
        for key in sorted(vm.values):
            if not _NOT_EXTRA.match(key) and vm.values[key] != "":
                _vmw_config(hardware, vm.original_keys.get(key, key), vm.values[key], tag="ExtraConfig")
    return env


def _add_items(items: _Items, vm: VirtualMachine, disks: List[OvfDisk], with_mac: bool = False,
               cdrom_files: Optional[Dict[int, str]] = None) -> None:
    items.add({"AllocationUnits": "hertz * 10^6", "Description": "Number of Virtual CPUs",
               "ElementName": f"{vm.cpus} virtual CPU(s)", "ResourceType": 3, "VirtualQuantity": vm.cpus},
              config=())
    cpu_item = items.parent[-1]
    cores = ET.SubElement(cpu_item, _q("vmw", "CoresPerSocket"), {_q("ovf", "required"): "false"})
    cores.text = str(vm.cores_per_socket)
    items.add({"AllocationUnits": "byte * 2^20", "Description": "Memory Size",
               "ElementName": f"{vm.memory_mb}MB of memory", "ResourceType": 4, "VirtualQuantity": vm.memory_mb})
    controller_ids: Dict[str, int] = {}
    for ctrl in vm.controllers:
        controller_ids[ctrl.name] = items.add(_controller_fields(ctrl))
    for kind in vm.usb:
        items.add({"Address": 0, "Description": f"USB Controller ({kind.upper()})", "ElementName": "usb",
                   "ResourceSubType": f"vmware.usb.{kind}", "ResourceType": 23}, required=False)
    for number, disk in enumerate(disks):
        items.add({"AddressOnParent": disk.unit, "ElementName": f"disk{number}",
                   "HostResource": f"ovf:/disk/{disk.disk_id}", "Parent": controller_ids[disk.controller],
                   "ResourceType": 17})
    for number, cdrom in enumerate(vm.cdroms):
        file_id = (cdrom_files or {}).get(number)
        if file_id:  # the ISO travels in the package, connected at power-on
            items.add({"AddressOnParent": cdrom.unit, "AutomaticAllocation": "true", "ElementName": f"cdrom{number}",
                       "HostResource": f"ovf:/file/{file_id}", "Parent": controller_ids[cdrom.controller],
                       "ResourceType": 15})
            continue
        items.add({"AddressOnParent": cdrom.unit, "AutomaticAllocation": "false", "ElementName": f"cdrom{number}",
                   "Parent": controller_ids[cdrom.controller],
                   "ResourceSubType": "vmware.cdrom.remotepassthrough", "ResourceType": 15}, required=False)
    for nic in vm.nics:
        subtype = NIC_SUBTYPES.get(nic.virtual_dev, "E1000")
        items.add({"Address": nic.mac if with_mac and nic.mac else None,
                   "AddressOnParent": nic.index, "AutomaticAllocation": "true", "Connection": nic.network,
                   "Description": f'{subtype} ethernet adapter on "{nic.network}"',
                   "ElementName": f"ethernet{nic.index}", "ResourceSubType": subtype, "ResourceType": 10})
    if vm.floppy:
        items.add({"AddressOnParent": 0, "AutomaticAllocation": "false", "ElementName": "floppy0",
                   "ResourceSubType": "vmware.floppy.remotedevice", "ResourceType": 14}, required=False)
    if vm.sound:
        items.add({"AutomaticAllocation": "false", "ElementName": "sound",
                   "ResourceSubType": SOUND_SUBTYPES.get(vm.sound, "vmware.soundcard.ensoniq1371"),
                   "ResourceType": 1}, required=False)
    items.add({"AutomaticAllocation": "false", "ElementName": "video", "ResourceType": 24}, required=False)
    if vm.vmci:
        items.add({"AutomaticAllocation": "false", "ElementName": "vmci", "ResourceSubType": "vmware.vmci",
                   "ResourceType": 1}, required=False)


def _indent(element: ET.Element, level: int = 0) -> None:
    """Pretty-print in place (ElementTree.indent needs Python 3.9)."""
    pad = "\n" + "  " * level
    children = list(element)
    if children:
        if not (element.text or "").strip():
            element.text = pad + "  "
        for child in children:
            _indent(child, level + 1)
        if not (children[-1].tail or "").strip():
            children[-1].tail = pad
    if level and not (element.tail or "").strip():
        element.tail = pad


def render(envelope: ET.Element, pad_to: Optional[int] = None) -> bytes:
    """Serialize; with ``pad_to``, add trailing white space up to exactly that many bytes."""
    _indent(envelope)
    data = ET.tostring(envelope, encoding="UTF-8", xml_declaration=True) + b"\n"
    if pad_to is not None:
        if len(data) > pad_to:
            raise ValueError(f"OVF of {len(data)} bytes does not fit the {pad_to} reserved")
        data += b" " * (pad_to - len(data) - 1) + b"\n" if pad_to > len(data) else b""
    return data


# -- reading ------------------------------------------------------------------------------------
def parse_ovf(data: bytes) -> ET.Element:
    """Parse an OVF, refusing DTDs: no external entities, no entity expansion bombs."""
    if re.search(rb"<!\s*(DOCTYPE|ENTITY)", data, re.I):
        raise OvatoolError("the OVF declares a DOCTYPE or ENTITY (refused: external entities and entity "
                           "expansion are not allowed in OVF)")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise OvatoolError(f"the OVF is not well-formed XML: {exc}") from None


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def descriptor_namespace(envelope: ET.Element) -> str:
    """The OVF namespace of a parsed descriptor (1.x or 2.0); anything else is refused with a reason."""
    namespace = envelope.tag[1:].split("}", 1)[0] if envelope.tag.startswith("{") else ""
    local = local_name(envelope.tag)
    if local != "Envelope":
        raise OvatoolError(f"the root element is <{local}>, not an OVF <Envelope>")
    if namespace in OVF_NAMESPACES:
        return namespace
    if namespace in OLD_OVF_NAMESPACES:
        raise OvatoolError(f"the descriptor is OVF 0.9 (namespace {namespace}), which predates the DMTF standard; "
                           "only OVF 1.x and 2.0 descriptors can be checked")
    raise OvatoolError(f"the Envelope is in an unknown namespace {namespace or '(none)'!r}; OVF 1.x uses "
                       f"{OVF} and OVF 2.0 {OVF2}")
