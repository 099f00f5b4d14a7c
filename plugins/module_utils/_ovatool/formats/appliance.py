# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Appliance authoring: the OVF sections that describe an appliance rather than its hardware.

Product sections with vApp properties (DSP0243 ProductSection: Product, Vendor, Version..., Category and Property
with types, qualifiers and per-configuration values), EULAs, the annotation, deployment options with CPU and
memory per configuration, network names, ``vmw:ExtraConfig`` and VMware's IP assignment settings. The keys and
shapes are those of VMware's ova-compose (open-vmdk), so its YAML sections can be pasted.

This file is the model and its checking: ``parse_appliance`` checks a spec completely, naming the key path of the
first problem, before anything is read or written. ``appliance_write.apply_appliance`` writes it into an OVF
Envelope; ``appliance_read`` reads it back (``describe_envelope``) and checks an envelope's (``check_envelope``).
"""
from __future__ import annotations

import math
import re
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


def typed_value(value: Any, kind: str, where: str) -> str:
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


def parse_qualifiers(value: Any, where: str) -> Tuple[str, ...]:
    items = value if isinstance(value, list) else [q for q in re.split(r",(?![^{]*\})", _text(value, where)) if q.strip()]
    out = []
    for number, item in enumerate(items):
        text = _text(item, f"{where}[{number}]").strip()
        if not _QUALIFIER.match(text):
            raise _fail(f"{where}[{number}]", f"{text!r} is not MinLen(n), MaxLen(n) or ValueMap{{...}}")
        out.append(text)
    return tuple(out)


def check_qualifiers(text: str, qualifiers: Sequence[str], where: str) -> None:
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
    qualifiers = parse_qualifiers(spec["qualifiers"], f"{where}.qualifiers") if spec.get("qualifiers") else ()
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
            default = typed_value(raw["default"], kind, f"{where}.value.default")
        for config, value in _mapping(values, f"{where}.value").items():
            if config not in configurations:
                raise _fail(f"{where}.value.{config}", "is not a declared configuration")
            per_configuration.append((config, typed_value(value, kind, f"{where}.value.{config}")))
    elif raw is not None:
        default = typed_value(raw, kind, f"{where}.value")
    for text, at in [(default, f"{where}.value")] + [(v, f"{where}.value.{c}") for c, v in per_configuration]:
        if text is not None:
            check_qualifiers(text, qualifiers, at)
    return Property(key, kind, default, tuple(per_configuration),
                    _flag(spec.get("user_configurable", False), f"{where}.user_configurable"),
                    _flag(spec.get("password", False), f"{where}.password"),
                    _text(spec["label"], f"{where}.label") if spec.get("label") is not None else None,
                    _text(spec["description"], f"{where}.description") if spec.get("description") is not None
                    else None,
                    _text(category, f"{where}.category") if category is not None else None, qualifiers)


PRODUCT_FIELDS = (("product", "Product"), ("vendor", "Vendor"), ("version", "Version"),
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
        fields=tuple((element, _text(spec[key], f"{where}.{key}")) for key, element in PRODUCT_FIELDS
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
