# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Appliance authoring: the OVF sections that describe an appliance rather than its hardware.

Product sections with vApp properties (DSP0243 ProductSection: Product, Vendor, Version..., Category and Property
with types, qualifiers and per-configuration values), EULAs, the annotation, deployment options with CPU and
memory per configuration, network names, ``vmw:ExtraConfig`` and VMware's IP assignment settings. The keys and
shapes are those of VMware's ova-compose (open-vmdk), so its YAML sections can be pasted.

``parse_appliance`` checks a spec completely, naming the key path of the first problem, before anything is read
or written. ``apply_appliance`` writes the sections the spec names into an OVF Envelope, replacing the ones it
already has of those kinds and leaving the others as they were, so that applying the same spec twice gives the
same descriptor (what ``ova_edit`` relies on for idempotence).
"""
from __future__ import annotations

import copy
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import OvatoolError

OVF1 = "http://schemas.dmtf.org/ovf/envelope/1"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VMW = "http://www.vmware.com/schema/ovf"

INT_TYPES = {f"{sign}int{bits}": ((0, 2 ** bits - 1) if sign == "u" else (-2 ** (bits - 1), 2 ** (bits - 1) - 1))
             for sign in ("u", "s") for bits in (8, 16, 32, 64)}
REAL_TYPES = ("real32", "real64")
TYPES = ("string", "boolean") + tuple(INT_TYPES) + REAL_TYPES
TRANSPORTS = ("iso", "com.vmware.guestInfo")
IP_PROTOCOLS = ("IPv4", "IPv6")
IP_SCHEMES = ("ovfenv", "dhcp")
# property keys: what ova-compose and VMware's own appliances use (dots included); no spaces, colons or quotes
KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
# configuration, category, class and instance ids: the same, as they travel in space-separated attribute lists
ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_QUALIFIER = re.compile(r'^\s*(MinLen|MaxLen)\s*\(\s*(\d+)\s*\)\s*$|^\s*ValueMap\s*\{(.*)\}\s*$')

TOP_KEYS = ("product_sections", "product", "annotation", "eula", "configurations", "default_configuration",
            "networks", "extra_configs", "ip_assignment_settings")
PRODUCT_KEYS = ("product", "vendor", "version", "full_version", "info", "product_url", "vendor_url", "app_url",
                "class", "instance", "categories", "transports", "properties")
PROPERTY_KEYS = ("type", "value", "user_configurable", "password", "label", "description", "category", "qualifiers")
CONFIGURATION_KEYS = ("label", "description", "cpus", "memory")


class ApplianceError(OvatoolError):
    """A spec that cannot be written as asked: the message starts with the key path."""


@dataclass(frozen=True)
class Property:
    key: str
    type: str
    value: Optional[str]  # the default, as OVF text
    per_configuration: Tuple[Tuple[str, str], ...]  # (configuration id, value)
    user_configurable: bool
    password: bool
    label: Optional[str]
    description: Optional[str]
    category: Optional[str]
    qualifiers: Tuple[str, ...]


@dataclass(frozen=True)
class Product:
    fields: Tuple[Tuple[str, str], ...]  # (OVF element, text) in schema order
    info: str
    class_: Optional[str]
    instance: Optional[str]
    categories: Tuple[Tuple[str, str], ...]  # (id, label)
    transports: Tuple[str, ...]
    properties: Tuple[Property, ...]


@dataclass(frozen=True)
class Configuration:
    id: str
    label: str
    description: str
    cpus: Optional[int]
    memory: Optional[int]  # MiB


@dataclass(frozen=True)
class Appliance:
    """A checked spec. ``None`` means the spec does not name that kind of section: it is left as it is."""

    products: Optional[Tuple[Product, ...]] = None
    annotation: Optional[Tuple[str, str]] = None  # (text, info); text "" removes it
    eulas: Optional[Tuple[str, ...]] = None
    configurations: Optional[Tuple[Configuration, ...]] = None
    default_configuration: Optional[str] = None
    networks: Optional[Tuple[Tuple[str, Optional[str], Optional[str]], ...]] = None  # (match, name, description)
    extra_configs: Optional[Tuple[Tuple[str, str, bool], ...]] = None  # (key, value, required)
    ip_assignment: Optional[Tuple[str, str]] = None  # (protocols, schemes)

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__dataclass_fields__)


# -- checking a spec --------------------------------------------------------------------------------------
def _fail(where: str, text: str) -> ApplianceError:
    return ApplianceError(f"{where}: {text}")


def _mapping(value: Any, where: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"must be a mapping, not {type(value).__name__}")
    return value


def _known(spec: Dict[str, Any], keys: Sequence[str], where: str) -> None:
    for key in spec:
        if key not in keys:
            raise _fail(f"{where}.{key}", f"unknown key (known: {', '.join(keys)})")


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise _fail(where, f"must be text, not {type(value).__name__}")


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        return value.strip().lower() in ("true", "yes")
    raise _fail(where, f"must be true or false, not {value!r}")


def _identifier(value: Any, where: str, pattern: "re.Pattern[str]" = ID) -> str:
    text = _text(value, where)
    if not pattern.match(text):
        raise _fail(where, f"{text!r} is not a valid id (letters, digits, '_', '-', '.')")
    return text


def _typed_value(value: Any, kind: str, where: str) -> str:
    """``value`` as the OVF text of a property of type ``kind``, or an error saying why it does not fit."""
    if kind == "boolean":
        return "true" if _flag(value, where) else "false"
    if kind in INT_TYPES:
        low, high = INT_TYPES[kind]
        try:
            number = int(str(value).strip(), 10) if not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise _fail(where, f"{value} does not fit {kind}")
        return str(number)
    if kind in REAL_TYPES:
        try:
            number = float(str(value).strip()) if not isinstance(value, bool) else math.nan
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or (kind == "real32" and abs(number) > 3.4028234663852886e38):
            raise _fail(where, f"{value} does not fit {kind}")
        return repr(number) if not isinstance(value, str) else str(value).strip()
    return _text(value, where)


def _qualifiers(value: Any, where: str) -> Tuple[str, ...]:
    items = value if isinstance(value, list) else [q for q in re.split(r",(?![^{]*\})", _text(value, where)) if q.strip()]
    out = []
    for number, item in enumerate(items):
        text = _text(item, f"{where}[{number}]").strip()
        if not _QUALIFIER.match(text):
            raise _fail(f"{where}[{number}]", f"{text!r} is not MinLen(n), MaxLen(n) or ValueMap{{...}}")
        out.append(text)
    return tuple(out)


def _check_qualifiers(text: str, qualifiers: Sequence[str], where: str) -> None:
    for qualifier in qualifiers:
        match = _QUALIFIER.match(qualifier)
        if match is None:
            continue
        if match.group(1) == "MinLen" and len(text) < int(match.group(2)):
            raise _fail(where, f"{text!r} is shorter than {qualifier}")
        if match.group(1) == "MaxLen" and len(text) > int(match.group(2)):
            raise _fail(where, f"{text!r} is longer than {qualifier}")
        if match.group(3) is not None:
            allowed = [v.strip().strip('"') for v in match.group(3).split(",")]
            if text not in allowed:
                raise _fail(where, f"{text!r} is not one of {qualifier}")


def _property(key: str, spec: Any, where: str, categories: Sequence[str], configurations: Sequence[str]) -> Property:
    spec = _mapping(spec, where)
    _known(spec, PROPERTY_KEYS, where)
    _identifier(key, where, KEY)
    kind = _text(spec.get("type", "string"), f"{where}.type")
    if kind not in TYPES:
        raise _fail(f"{where}.type", f"{kind!r} is not one of {', '.join(TYPES)}")
    qualifiers = _qualifiers(spec["qualifiers"], f"{where}.qualifiers") if spec.get("qualifiers") else ()
    category = spec.get("category")
    if category is not None and _text(category, f"{where}.category") not in categories:
        raise _fail(f"{where}.category", f"{category!r} is not declared in this product section's categories")
    default: Optional[str] = None
    per_configuration: List[Tuple[str, str]] = []
    raw = spec.get("value")
    if isinstance(raw, dict):
        # ova-compose: {default: v, configurations: {id: v}}; or directly {configuration id: v}
        values = raw.get("configurations", {}) if set(raw) <= {"default", "configurations"} else raw
        if "default" in raw and set(raw) <= {"default", "configurations"}:
            default = _typed_value(raw["default"], kind, f"{where}.value.default")
        for config, value in _mapping(values, f"{where}.value").items():
            if config not in configurations:
                raise _fail(f"{where}.value.{config}", "is not a declared configuration")
            per_configuration.append((config, _typed_value(value, kind, f"{where}.value.{config}")))
    elif raw is not None:
        default = _typed_value(raw, kind, f"{where}.value")
    for text, at in [(default, f"{where}.value")] + [(v, f"{where}.value.{c}") for c, v in per_configuration]:
        if text is not None:
            _check_qualifiers(text, qualifiers, at)
    return Property(key, kind, default, tuple(per_configuration),
                    _flag(spec.get("user_configurable", False), f"{where}.user_configurable"),
                    _flag(spec.get("password", False), f"{where}.password"),
                    _text(spec["label"], f"{where}.label") if spec.get("label") is not None else None,
                    _text(spec["description"], f"{where}.description") if spec.get("description") is not None
                    else None,
                    _text(category, f"{where}.category") if category is not None else None, qualifiers)


_PRODUCT_FIELDS = (("product", "Product"), ("vendor", "Vendor"), ("version", "Version"),
                   ("full_version", "FullVersion"), ("product_url", "ProductUrl"), ("vendor_url", "VendorUrl"),
                   ("app_url", "AppUrl"))


def _product(spec: Any, where: str, configurations: Sequence[str]) -> Product:
    spec = _mapping(spec, where)
    _known(spec, PRODUCT_KEYS, where)
    categories = [(_identifier(cid, f"{where}.categories.{cid}"), _text(label, f"{where}.categories.{cid}"))
                  for cid, label in _mapping(spec.get("categories") or {}, f"{where}.categories").items()]
    transports = []
    for number, transport in enumerate(spec.get("transports") or []):
        if transport not in TRANSPORTS:
            raise _fail(f"{where}.transports[{number}]", f"{transport!r} is not one of {', '.join(TRANSPORTS)}")
        transports.append(transport)
    properties = tuple(_property(key, value, f"{where}.properties.{key}", [c for c, _l in categories], configurations)
                       for key, value in _mapping(spec.get("properties") or {}, f"{where}.properties").items())
    return Product(
        fields=tuple((element, _text(spec[key], f"{where}.{key}")) for key, element in _PRODUCT_FIELDS
                     if spec.get(key) is not None),
        info=_text(spec.get("info") or "Information about the installed software", f"{where}.info"),
        class_=_identifier(spec["class"], f"{where}.class") if spec.get("class") else None,
        instance=_identifier(spec["instance"], f"{where}.instance") if spec.get("instance") else None,
        categories=tuple(categories), transports=tuple(transports), properties=properties)


def _configurations(spec: Any, where: str) -> Tuple[Configuration, ...]:
    out = []
    for cid, value in _mapping(spec, where).items():
        at = f"{where}.{cid}"
        _identifier(cid, at)
        value = _mapping(value or {}, at)
        _known(value, CONFIGURATION_KEYS, at)
        numbers = {}
        for key, least in (("cpus", 1), ("memory", 4)):
            if value.get(key) is not None:
                try:
                    numbers[key] = int(value[key])
                except (TypeError, ValueError):
                    numbers[key] = -1
                if isinstance(value[key], bool) or numbers[key] < least:
                    raise _fail(f"{at}.{key}", f"{value[key]!r} is not a whole number of at least {least}")
        label = _text(value.get("label") or cid, f"{at}.label")
        out.append(Configuration(cid, label, _text(value.get("description") or label, f"{at}.description"),
                                 numbers.get("cpus"), numbers.get("memory")))
    if not out:
        raise _fail(where, "declares no configuration")
    return tuple(out)


def parse_appliance(spec: Any, where: str = "appliance") -> Appliance:
    """Check ``spec`` (the module's ``appliance`` option) completely; raise ApplianceError naming the key path."""
    if spec is None:
        return Appliance()
    spec = _mapping(spec, where)
    _known(spec, TOP_KEYS, where)
    configurations = _configurations(spec["configurations"], f"{where}.configurations") \
        if spec.get("configurations") is not None else None
    config_ids = [c.id for c in configurations or ()]
    default = spec.get("default_configuration")
    if default is not None and default not in config_ids:
        raise _fail(f"{where}.default_configuration", f"{default!r} is not a declared configuration")
    if spec.get("product") is not None and spec.get("product_sections") is not None:
        raise _fail(f"{where}.product", "give product (one section) or product_sections (a list), not both")
    products = None
    if spec.get("product") is not None:
        products = (_product(spec["product"], f"{where}.product", config_ids),)
    elif spec.get("product_sections") is not None:
        sections = spec["product_sections"]
        if not isinstance(sections, list):
            raise _fail(f"{where}.product_sections", "must be a list")
        products = tuple(_product(section, f"{where}.product_sections[{n}]", config_ids)
                         for n, section in enumerate(sections))
    annotation = None
    if "annotation" in spec:
        raw = spec["annotation"]
        if isinstance(raw, dict):
            _known(raw, ("text", "info"), f"{where}.annotation")
            annotation = (_text(raw.get("text") or "", f"{where}.annotation.text"),
                          _text(raw.get("info") or "A human-readable annotation", f"{where}.annotation.info"))
        else:
            annotation = (_text(raw if raw is not None else "", f"{where}.annotation"), "A human-readable annotation")
    eulas = None
    if spec.get("eula") is not None:
        raw = spec["eula"]
        eulas = tuple(_text(text, f"{where}.eula[{n}]") for n, text in enumerate(raw)) if isinstance(raw, list) \
            else (_text(raw, f"{where}.eula"),)
    networks = None
    if spec.get("networks") is not None:
        networks = []
        for match, value in _mapping(spec["networks"], f"{where}.networks").items():
            at = f"{where}.networks.{match}"
            value = _mapping(value, at)
            _known(value, ("name", "description"), at)
            if not value.get("name") and not value.get("description"):
                raise _fail(at, "give a name, a description, or both")
            networks.append((str(match), _text(value["name"], f"{at}.name") if value.get("name") else None,
                             _text(value["description"], f"{at}.description") if value.get("description") else None))
        networks = tuple(networks)
    extra = None
    if spec.get("extra_configs") is not None:
        extra = []
        for key, value in _mapping(spec["extra_configs"], f"{where}.extra_configs").items():
            at = f"{where}.extra_configs.{key}"
            _identifier(key, at, KEY)
            if isinstance(value, dict):
                _known(value, ("value", "required"), at)
                extra.append((key, _text(value.get("value", ""), f"{at}.value"),
                              _flag(value.get("required", False), f"{at}.required")))
            else:
                extra.append((key, _text(value, at), False))
        extra = tuple(extra)
    ip_assignment = None
    if spec.get("ip_assignment_settings") is not None:
        raw = _mapping(spec["ip_assignment_settings"], f"{where}.ip_assignment_settings")
        _known(raw, ("protocols", "schemes"), f"{where}.ip_assignment_settings")
        lists = {}
        for key, allowed in (("protocols", IP_PROTOCOLS), ("schemes", IP_SCHEMES)):
            names = [n.strip() for n in _text(raw.get(key, ""), f"{where}.ip_assignment_settings.{key}").split(",")
                     if n.strip()]
            for name in names:
                if name not in allowed:
                    raise _fail(f"{where}.ip_assignment_settings.{key}", f"{name!r} is not one of {', '.join(allowed)}")
            lists[key] = ",".join(names)
        ip_assignment = (lists["protocols"], lists["schemes"])
    return Appliance(products, annotation, eulas, configurations, default, networks, extra, ip_assignment)


def check_networks(appliance: Appliance, nic_names: Sequence[str], networks: Sequence[str]) -> None:
    """Every network the spec renames must be a NIC of the VM (``ethernetN``) or a network it uses: checked with
    the VMX, before any disk is read."""
    for match, _name, _description in appliance.networks or ():
        if match not in nic_names and match not in networks:
            raise ApplianceError(f"appliance.networks.{match}: no NIC (ethernetN) or network has that name (the VM "
                                 f"has {', '.join(list(nic_names) + list(networks)) or 'no NIC'})")


def merge_specs(common: Optional[Dict[str, Any]], own: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The playbook's ``ovatool_appliances[vm]`` over ``ovatool_appliance``, key by key (top level)."""
    merged = dict(common or {})
    merged.update(own or {})
    return merged


# -- writing into an Envelope -----------------------------------------------------------------------------
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


# -- reading them back --------------------------------------------------------------------------------------
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
        fields = {key: _child_text(section, ns, element) for key, element in _PRODUCT_FIELDS
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
                qualifiers = _qualifiers(prop.get(a("qualifiers")) or "", where + " qualifiers")
                values = [(prop.get(a("value")), "ovf:value")]
                values += [(v.get(a("value")), f"Value for configuration {v.get(a('configuration'))!r}")
                           for v in prop.findall(a("Value"))]
                for value, what in values:
                    if value is None or (value == "" and kind == "string"):
                        continue
                    text = _typed_value(value, kind, f"{where} {what}")
                    _check_qualifiers(text, qualifiers, f"{where} {what}")
            except ApplianceError as exc:
                problems.append(exc.message)
    for hardware in envelope.iter(a("VirtualHardwareSection")):
        for transport in (hardware.get(a("transport")) or "").split():
            if transport not in TRANSPORTS:
                problems.append(f"VirtualHardwareSection: ovf:transport {transport!r} is not one of "
                                f"{', '.join(TRANSPORTS)}")
    return problems
