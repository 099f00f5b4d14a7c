# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writing an appliance (formats/appliance) into an OVF Envelope: ``apply_appliance`` replaces the sections the
spec names and leaves the others as they were, so that applying the same spec twice gives the same descriptor
(what ``ova_edit`` relies on for idempotence)."""
from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Tuple

from .appliance import OVF1, RASD, VMW, Appliance, ApplianceError, Product, Property


class _Writer:
    def __init__(self, envelope: ET.Element, ns: str) -> None:
        self.env = envelope
        self.ns = ns
        systems = [child for child in envelope if child.tag == self.q("VirtualSystem")]
        if len(systems) != 1:
            raise ApplianceError("appliance: the descriptor must hold exactly one VirtualSystem "
                                 f"(it holds {len(systems)}; VirtualSystemCollections are not edited)")
        self.system = systems[0]
        hardware = self.system.find(self.q("VirtualHardwareSection"))
        if hardware is None:
            raise ApplianceError("appliance: the VirtualSystem has no VirtualHardwareSection")
        self.hardware = hardware

    def q(self, tag: str, ns: Optional[str] = None) -> str:
        return f"{{{ns or self.ns}}}{tag}"

    def element(self, parent: ET.Element, tag: str, text: Optional[str] = None, index: Optional[int] = None,
                **attrs: str) -> ET.Element:
        made = ET.Element(self.q(tag), {self.q(k): v for k, v in attrs.items() if v is not None})
        if text is not None:
            made.text = text
        if index is None:
            parent.append(made)
        else:
            parent.insert(index, made)
        return made

    def section(self, tag: str, info: str) -> ET.Element:
        made = ET.Element(self.q(tag))
        ET.SubElement(made, self.q("Info")).text = info
        return made


def _rasd(item: ET.Element, name: str) -> Optional[ET.Element]:
    return item.find(f"{{{RASD}}}{name}")


def _instance_ids(hardware: ET.Element) -> List[int]:
    ids = []
    for item in hardware:
        found = _rasd(item, "InstanceID")
        if found is not None and (found.text or "").strip().isdigit():
            ids.append(int(found.text.strip()))
    return ids


def _product_section(w: _Writer, product: Product) -> ET.Element:
    section = w.section("ProductSection", product.info)
    if product.class_:
        section.set(w.q("class"), product.class_)
    if product.instance:
        section.set(w.q("instance"), product.instance)
    for element, text in product.fields:
        w.element(section, element, text)
    groups: List[Tuple[Optional[str], List[Property]]] = [(None, [p for p in product.properties if not p.category])]
    groups += [(label, [p for p in product.properties if p.category == cid]) for cid, label in product.categories]
    for label, members in groups:
        if label is not None:
            w.element(section, "Category", label)
        for prop in members:
            attrs = {"key": prop.key, "type": prop.type,
                     "qualifiers": ",".join(prop.qualifiers) if prop.qualifiers else None,
                     "userConfigurable": "true" if prop.user_configurable else "false", "value": prop.value,
                     "password": "true" if prop.password else None}
            made = w.element(section, "Property", **attrs)
            if prop.label is not None:
                w.element(made, "Label", prop.label)
            if prop.description is not None:
                w.element(made, "Description", prop.description)
            for config, value in prop.per_configuration:
                w.element(made, "Value", value=value, configuration=config)
    return section


def _apply_configurations(w: _Writer, appliance: Appliance) -> None:
    configurations = appliance.configurations or ()
    for old in w.env.findall(w.q("DeploymentOptionSection")):
        w.env.remove(old)
    section = w.section("DeploymentOptionSection", "Deployment options")
    for config in configurations:
        made = w.element(section, "Configuration", id=config.id,
                         default="true" if config.id == appliance.default_configuration else None)
        w.element(made, "Label", config.label)
        w.element(made, "Description", config.description)
    w.env.insert(list(w.env).index(w.system), section)
    # CPU (3) and memory (4) per configuration, rebuilt each time: the first Item of each kind is the base and
    # keeps its value for the configurations without an override (ovf:configuration lists them); every override
    # is a copy of it after it. Earlier overrides (Items of that kind with ovf:configuration) are dropped first.
    hardware = w.hardware
    bases = {}
    for resource in ("3", "4"):
        same = [i for i in hardware if _rasd(i, "ResourceType") is not None
                and (_rasd(i, "ResourceType").text or "").strip() == resource]
        if not same:
            continue
        bases[resource] = same[0]
        for item in same[1:]:
            if item.get(w.q("configuration")) is not None:
                hardware.remove(item)
        if w.q("configuration") in same[0].attrib:
            del same[0].attrib[w.q("configuration")]
    next_id = max(_instance_ids(hardware) or [0]) + 1
    for resource, field, unit in (("3", "cpus", "virtual CPU(s)"), ("4", "memory", "MB of memory")):
        base = bases.get(resource)
        if base is None:
            continue
        overriding = [c for c in configurations if getattr(c, field) is not None]
        if not overriding:
            continue
        rest = [c.id for c in configurations if getattr(c, field) is None]
        if rest:
            base.set(w.q("configuration"), " ".join(rest))
        position = list(hardware).index(base)
        for offset, config in enumerate(overriding, 0 if not rest else 1):
            item = base if not rest and offset == 0 else copy.deepcopy(base)
            item.set(w.q("configuration"), config.id)
            value = getattr(config, field)
            _rasd(item, "VirtualQuantity").text = str(value)
            if _rasd(item, "ElementName") is not None:
                _rasd(item, "ElementName").text = f"{value}{' ' if resource == '3' else ''}{unit}"
            if item is not base:
                _rasd(item, "InstanceID").text = str(next_id)
                next_id += 1
                hardware.insert(position + offset, item)


def _apply_networks(w: _Writer, appliance: Appliance) -> None:
    section = w.env.find(w.q("NetworkSection"))
    nics = [i for i in w.hardware if _rasd(i, "ResourceType") is not None
            and (_rasd(i, "ResourceType").text or "").strip() == "10"]
    renamed: Dict[str, str] = {}
    described: Dict[str, str] = {}
    for match, name, description in appliance.networks or ():
        hits = [n for n in nics if (_rasd(n, "ElementName") is not None and _rasd(n, "ElementName").text == match)
                or (_rasd(n, "Connection") is not None and _rasd(n, "Connection").text == match)]
        networks = {(_rasd(n, "Connection").text or "") for n in hits if _rasd(n, "Connection") is not None}
        if section is not None:
            networks |= {net.get(w.q("name")) for net in section.findall(w.q("Network"))
                         if net.get(w.q("name")) == match}
        if not hits and not networks:
            raise ApplianceError(f"appliance.networks.{match}: no NIC (ethernetN) or network has that name")
        for nic in hits:
            connection = _rasd(nic, "Connection")
            old = connection.text or ""
            if name:
                connection.text = name
                description_el = _rasd(nic, "Description")
                if description_el is not None and description_el.text:
                    description_el.text = description_el.text.replace(f'"{old}"', f'"{name}"')
            described[name or old] = description or described.get(name or old, "")
        for old in networks:
            if name:
                renamed[old] = name
            if description:
                described[name or old] = description
    if section is None:
        return
    seen = set()
    for net in list(section.findall(w.q("Network"))):
        current = renamed.get(net.get(w.q("name")), net.get(w.q("name")))
        # NICs that now share a name share one entry
        if current in seen:
            section.remove(net)
            continue
        seen.add(current)
        net.set(w.q("name"), current)
        if described.get(current):
            text = net.find(w.q("Description"))
            if text is None:
                text = w.element(net, "Description")
            text.text = described[current]


def _apply_extra_configs(w: _Writer, appliance: Appliance) -> None:
    keys = {key for key, _value, _required in appliance.extra_configs or ()}
    for element in list(w.hardware.findall(f"{{{VMW}}}ExtraConfig")):
        if element.get(f"{{{VMW}}}key") in keys:
            w.hardware.remove(element)
    for key, value, required in appliance.extra_configs or ():
        ET.SubElement(w.hardware, f"{{{VMW}}}ExtraConfig", {w.q("required"): "true" if required else "false",
                                                            f"{{{VMW}}}key": key, f"{{{VMW}}}value": value})


def apply_appliance(envelope: ET.Element, appliance: Appliance, ns: str = OVF1) -> None:
    """Write the sections ``appliance`` names into ``envelope`` (in place), replacing those of the same kinds."""
    if appliance.empty:
        return
    w = _Writer(envelope, ns)
    system = w.system
    kinds = []
    if appliance.annotation is not None:
        kinds.append("AnnotationSection")
    if appliance.products is not None:
        kinds.append("ProductSection")
    if appliance.eulas is not None:
        kinds.append("EulaSection")
    for kind in kinds:
        for old in system.findall(w.q(kind)):
            system.remove(old)
    if appliance.ip_assignment is not None:
        for old in system.findall(f"{{{VMW}}}IpAssignmentSection"):
            system.remove(old)
    # after Info and Name: annotation, products, EULAs, IP assignment; then the OS and hardware sections
    at = max(list(system).index(e) for e in system if e.tag in (w.q("Info"), w.q("Name"))) + 1
    new: List[ET.Element] = []
    if appliance.annotation is not None and appliance.annotation[0]:
        section = w.section("AnnotationSection", appliance.annotation[1])
        w.element(section, "Annotation", appliance.annotation[0])
        new.append(section)
    for product in appliance.products or ():
        new.append(_product_section(w, product))
    for text in appliance.eulas or ():
        section = w.section("EulaSection", "An end-user license agreement")
        w.element(section, "License", text)
        new.append(section)
    if appliance.ip_assignment is not None:
        section = ET.Element(f"{{{VMW}}}IpAssignmentSection", {
            w.q("required"): "false", f"{{{VMW}}}protocols": appliance.ip_assignment[0],
            f"{{{VMW}}}schemes": appliance.ip_assignment[1]})
        ET.SubElement(section, w.q("Info")).text = "Supported IP assignment schemes"
        new.append(section)
    for offset, section in enumerate(new):
        system.insert(at + offset, section)
    if appliance.products is not None:
        transports = []
        for product in appliance.products:
            transports += [t for t in product.transports if t not in transports]
        if transports:
            w.hardware.set(w.q("transport"), " ".join(transports))
        elif w.q("transport") in w.hardware.attrib:
            del w.hardware.attrib[w.q("transport")]
    if appliance.configurations is not None:
        _apply_configurations(w, appliance)
    if appliance.networks is not None:
        _apply_networks(w, appliance)
    if appliance.extra_configs is not None:
        _apply_extra_configs(w, appliance)
