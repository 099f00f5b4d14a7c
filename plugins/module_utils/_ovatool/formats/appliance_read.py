# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading an appliance back from an OVF Envelope: what ``ovatool info`` shows and what ``verify`` checks."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional

from .appliance import (OVF1, PRODUCT_FIELDS, TRANSPORTS, TYPES, VMW, ApplianceError, check_qualifiers,
                        parse_qualifiers, typed_value)


def _child_text(element: ET.Element, ns: str, tag: str) -> Optional[str]:
    found = element.find(f"{{{ns}}}{tag}")
    return None if found is None else (found.text or "")


def describe_envelope(envelope: ET.Element, ns: str = OVF1) -> Dict[str, Any]:
    """What a descriptor says about the appliance, as plain data (for ``ovatool info`` and ``ova_info``)."""

    def a(name: str) -> str:
        return f"{{{ns}}}{name}"

    system = envelope.find(a("VirtualSystem"))
    products = []
    for section in envelope.iter(a("ProductSection")):
        fields = {key: _child_text(section, ns, element) for key, element in PRODUCT_FIELDS
                  if section.find(a(element)) is not None}
        properties = []
        category = None
        for child in section:
            if child.tag == a("Category"):
                category = child.text or ""
            elif child.tag == a("Property"):
                properties.append({
                    "key": child.get(a("key")), "type": child.get(a("type")), "value": child.get(a("value")),
                    "user_configurable": child.get(a("userConfigurable"), "false").lower() == "true",
                    "password": child.get(a("password"), "false").lower() == "true",
                    "label": _child_text(child, ns, "Label"), "description": _child_text(child, ns, "Description"),
                    "category": category, "qualifiers": child.get(a("qualifiers")),
                    "values": {v.get(a("configuration")): v.get(a("value")) for v in child.findall(a("Value"))}})
        products.append(dict(fields, info=_child_text(section, ns, "Info"), **{"class": section.get(a("class"))},
                             instance=section.get(a("instance")), properties=properties))
    configurations = [{"id": c.get(a("id")), "label": _child_text(c, ns, "Label"),
                       "description": _child_text(c, ns, "Description"),
                       "default": c.get(a("default"), "false").lower() == "true"}
                      for c in envelope.iter(a("Configuration"))]
    hardware = system.find(a("VirtualHardwareSection")) if system is not None else None
    annotation = system.find(a("AnnotationSection")) if system is not None else None
    return {
        "name": _child_text(system, ns, "Name") if system is not None else None,
        "product_sections": products,
        "annotation": _child_text(annotation, ns, "Annotation") if annotation is not None else None,
        "eulas": [_child_text(e, ns, "License") for e in envelope.iter(a("EulaSection"))],
        "configurations": configurations,
        "default_configuration": next((c["id"] for c in configurations if c["default"]), None),
        "networks": [{"name": n.get(a("name")), "description": _child_text(n, ns, "Description")}
                     for n in envelope.iter(a("Network"))],
        "transports": (hardware.get(a("transport")) or "").split() if hardware is not None else [],
        "extra_configs": {e.get(f"{{{VMW}}}key"): e.get(f"{{{VMW}}}value")
                          for e in (hardware.findall(f"{{{VMW}}}ExtraConfig") if hardware is not None else [])},
    }


def check_envelope(envelope: ET.Element, ns: str = OVF1) -> List[str]:
    """Problems of the appliance sections of a descriptor: property types, values and qualifiers, the default
    configuration, transports."""
    problems = []

    def a(name: str) -> str:
        return f"{{{ns}}}{name}"

    defaults = [c.get(a("id")) for c in envelope.iter(a("Configuration")) if c.get(a("default"), "").lower() == "true"]
    if len(defaults) > 1:
        problems.append(f"DeploymentOptionSection: {len(defaults)} configurations are marked default "
                        f"({', '.join(defaults)}); at most one may be")
    for section in envelope.iter(a("ProductSection")):
        for prop in section.findall(a("Property")):
            key = prop.get(a("key")) or "?"
            where = f"ProductSection property {key!r}"
            kind = prop.get(a("type")) or ""
            if kind not in TYPES:
                problems.append(f"{where}: type {kind!r} is not one of DSP0243's ({', '.join(TYPES)})")
                continue
            try:
                qualifiers = parse_qualifiers(prop.get(a("qualifiers")) or "", where + " qualifiers")
                values = [(prop.get(a("value")), "ovf:value")]
                values += [(v.get(a("value")), f"Value for configuration {v.get(a('configuration'))!r}")
                           for v in prop.findall(a("Value"))]
                for value, what in values:
                    if value is None or (value == "" and kind == "string"):
                        continue
                    text = typed_value(value, kind, f"{where} {what}")
                    check_qualifiers(text, qualifiers, f"{where} {what}")
            except ApplianceError as exc:
                problems.append(exc.message)
    for hardware in envelope.iter(a("VirtualHardwareSection")):
        for transport in (hardware.get(a("transport")) or "").split():
            if transport not in TRANSPORTS:
                problems.append(f"VirtualHardwareSection: ovf:transport {transport!r} is not one of "
                                f"{', '.join(TRANSPORTS)}")
    return problems
