# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VMX (VMware configuration file) parsing and the virtual machine model.

Facts followed (docs/formats.md, VMX): one ``key = "value"`` a line, keys
case-insensitive, ``.encoding`` names the byte encoding, ``|XX`` is a hex
escape inside values, backslashes are not escapes, CRLF and ``#`` comments
occur, booleans compare case-insensitively.
"""
from __future__ import annotations

import codecs
import ntpath
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

from ..errors import VmxError, os_error

MAX_VMX_BYTES = 8 * 1024 * 1024
"""Real .vmx files are a few KiB; anything this large is not one."""

MAX_LINE = 64 * 1024

# VMware's names for encodings that Python spells differently.
_ENCODING_ALIASES = {
    "windows-949-2000": "cp949",
    "windows-949": "cp949",
    "shift_jis": "cp932",  # VMware on Windows writes Microsoft's Shift_JIS variant
    "windows-31j": "cp932",
    "gbk": "gbk",
    "gb2312": "gbk",
    "big5": "cp950",
    "windows-936-2000": "gbk",
    "windows-950-2000": "cp950",
}

_ENCODING_LINE = re.compile(rb'^[ \t]*\.encoding[ \t]*=[ \t]*"?([A-Za-z0-9_.:-]+)"?', re.I | re.M)
_ESCAPE = re.compile(r"\|([0-9A-Fa-f]{2})")

CONTROLLER_KINDS = ("scsi", "sata", "nvme", "ide")
_UNIT_KEY = re.compile(r"^(scsi|sata|nvme|ide)(\d+):(\d+)\.(present|filename|devicetype|mode)$")
_CTRL_KEY = re.compile(r"^(scsi|sata|nvme|ide)(\d+)\.(present|virtualdev)$")
_NIC_KEY = re.compile(r"^ethernet(\d+)\.present$")

DISK_DEVICE_TYPES = ("", "disk", "scsi-harddisk", "ata-harddisk", "plaindisk")
CDROM_DEVICE_TYPES = ("cdrom-image", "cdrom-raw", "atapi-cdrom")

# Highest unit number per controller kind (docs/formats.md, VMX).
MAX_UNIT = {"scsi": 64, "sata": 29, "nvme": 63, "ide": 1}


def python_encoding(name: str) -> str:
    """Map a VMware ``.encoding`` value to a Python codec name."""
    key = name.strip().lower()
    candidate = _ENCODING_ALIASES.get(key, key)
    try:
        return codecs.lookup(candidate).name
    except LookupError:
        raise VmxError(f'unknown .encoding "{name}"') from None


def unescape(value: str) -> str:
    """Undo VMX ``|XX`` hex escapes (``|22`` is a quote, ``|0A`` a newline)."""
    if "|" not in value:
        return value
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), value)


def is_true(value: Optional[str]) -> bool:
    return value is not None and value.strip().lower() in ("true", "yes", "1", "on")


def decode_vmx(raw: bytes, path: str = "", warnings: Optional[List[str]] = None) -> str:
    """Decode VMX bytes by their ``.encoding`` line (UTF-8, then windows-1252 without one).

    Bytes that are invalid in the declared encoding occur in real files (a
    truncated multi-byte name in an unrelated key); VMware loads such files,
    so they are replaced and reported in ``warnings`` instead of failing.
    """
    if b"\x00" in raw:
        raise VmxError("not a VMX file: it contains binary data (NUL bytes)", path)
    match = _ENCODING_LINE.search(raw)
    if match:
        declared = match.group(1).decode("ascii")
        try:
            encoding = python_encoding(declared)
        except VmxError as exc:
            raise VmxError(exc.message, path) from None
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError as exc:
            if warnings is not None:
                warnings.append(f"{path}: bytes at offset {exc.start} are not valid {declared} although "
                                ".encoding says so; they were replaced")
            return raw.decode(encoding, errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def parse_vmx_text(text: str, path: str = "", original_keys: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Parse VMX text into a dict keyed by lower-cased key (last one wins).

    ``original_keys``, when given, receives lower-cased key -> key as written.
    """
    values: Dict[str, str] = {}
    if text.startswith("\ufeff"):
        text = text[1:]
    bad: List[int] = []
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > MAX_LINE:
            raise VmxError(f"line {number} is {len(line)} characters long: not a VMX file", path)
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not key or any(c.isspace() or ord(c) < 32 for c in key):
            bad.append(number)
            continue
        value = value.strip()
        if value.startswith('"'):
            end = value.find('"', 1)
            value = value[1:] if end < 0 else value[1:end]
        values[key.lower()] = unescape(value)
        if original_keys is not None:
            original_keys[key.lower()] = key
    if bad and (len(bad) > 3 or not values):
        raise VmxError(
            f"not a VMX file: line {bad[0]} is not 'key = \"value\"'"
            + (f" ({len(bad)} such lines)" if len(bad) > 1 else ""),
            path,
        )
    return values


def read_vmx(path: str, warnings: Optional[List[str]] = None,
             original_keys: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Read and parse a .vmx file."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise VmxError("is a directory, not a .vmx file", path)
        if not stat.S_ISREG(mode):
            raise VmxError("not a regular file", path)
        with open(path, "rb") as handle:
            raw = handle.read(MAX_VMX_BYTES + 1)
    except OSError as exc:
        raise VmxError(os_error(exc, path, "cannot read the VMX").message, path) from None
    if len(raw) > MAX_VMX_BYTES:
        raise VmxError(f"larger than {MAX_VMX_BYTES // (1024 * 1024)} MiB: not a VMX file", path)
    return parse_vmx_text(decode_vmx(raw, path, warnings), path, original_keys)


@dataclass
class Controller:
    kind: str  # scsi, sata, nvme, ide
    bus: int
    virtual_dev: str  # lsilogic, lsisas1068, pvscsi, buslogic, ahci, nvme, ide

    @property
    def name(self) -> str:
        return f"{self.kind}{self.bus}"


@dataclass
class DiskRef:
    controller: str  # e.g. "scsi0"
    kind: str
    bus: int
    unit: int
    file_name: str  # as written in the VMX
    path: str  # resolved against the VMX folder
    mode: str = ""  # scsiX:Y.mode: persistent (or empty), independent-persistent, independent-nonpersistent...

    @property
    def address(self) -> str:
        return f"{self.controller}:{self.unit}"

    @property
    def independent(self) -> bool:
        """Snapshots do not capture an independent disk: it goes on changing under any snapshot."""
        return self.mode.startswith("independent")


@dataclass
class CdromRef:
    controller: str
    kind: str
    bus: int
    unit: int
    device_type: str
    file_name: str


@dataclass
class Nic:
    index: int
    virtual_dev: str
    connection_type: str
    network: str
    address_type: str
    mac: str


@dataclass
class VirtualMachine:
    vmx_path: str
    values: Dict[str, str]
    name: str
    guest_os: str
    cpus: int
    cores_per_socket: int
    memory_mb: int
    firmware: str
    secure_boot: bool
    hardware_version: int
    nvram: str
    encrypted: bool
    vtpm: bool
    controllers: List[Controller] = field(default_factory=list)
    disks: List[DiskRef] = field(default_factory=list)
    cdroms: List[CdromRef] = field(default_factory=list)
    nics: List[Nic] = field(default_factory=list)
    usb: List[str] = field(default_factory=list)
    sound: str = ""
    vmci: bool = False
    floppy: bool = False
    warnings: List[str] = field(default_factory=list)
    original_keys: Dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        return os.path.dirname(os.path.abspath(self.vmx_path))

    def get(self, key: str, default: str = "") -> str:
        return self.values.get(key.lower(), default)


def _int(values: Dict[str, str], key: str, default: int, path: str) -> int:
    raw = values.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw.strip(), 0) if raw.strip().lower().startswith("0x") else int(raw.strip())
    except ValueError:
        raise VmxError(f'{key} = "{raw}" is not a number', path) from None


def resolve_path(folder: str, file_name: str) -> str:
    """Resolve a VMX file reference: relative to the VMX's folder, or absolute.

    Windows absolute paths (``C:\\...``) cannot exist on this host; they are
    returned unchanged so that callers report them as missing.
    """
    if ntpath.isabs(file_name) and not file_name.startswith("/"):
        return file_name
    if os.path.isabs(file_name):
        return file_name
    return os.path.normpath(os.path.join(folder, file_name.replace("\\", "/")))


def _iter_units(values: Dict[str, str]) -> Iterator[Tuple[str, int, int]]:
    seen = set()
    for key in values:
        match = _UNIT_KEY.match(key)
        if match:
            unit = (match.group(1), int(match.group(2)), int(match.group(3)))
            if unit not in seen:
                seen.add(unit)
                yield unit


def _default_virtual_dev(kind: str) -> str:
    return {"scsi": "lsilogic", "sata": "ahci", "nvme": "nvme", "ide": "ide"}[kind]


def build_vm(values: Dict[str, str], vmx_path: str) -> VirtualMachine:
    """Turn parsed VMX values into the virtual machine model."""
    path = vmx_path
    folder = os.path.dirname(os.path.abspath(vmx_path))
    stem = os.path.splitext(os.path.basename(vmx_path))[0]
    firmware = values.get("firmware", "bios").strip().lower() or "bios"
    cpus = _int(values, "numvcpus", 1, path)
    cores = _int(values, "cpuid.corespersocket", 1, path)
    vm = VirtualMachine(
        vmx_path=vmx_path,
        values=values,
        name=values.get("displayname", "").strip() or stem,
        guest_os=values.get("guestos", "other").strip() or "other",
        cpus=max(cpus, 1),
        cores_per_socket=max(cores, 1),
        memory_mb=_int(values, "memsize", 256, path),
        firmware=firmware,
        secure_boot=is_true(values.get("uefi.secureboot.enabled")),
        hardware_version=_int(values, "virtualhw.version", 4, path),
        nvram=values.get("nvram", ""),
        encrypted=bool(values.get("encryption.keysafe") or values.get("vmx.encryptiontype")),
        vtpm=is_true(values.get("vtpm.present")),
    )

    controllers: Dict[Tuple[str, int], Controller] = {}
    for key, value in values.items():
        match = _CTRL_KEY.match(key)
        if match and match.group(3) == "present" and is_true(value):
            kind, bus = match.group(1), int(match.group(2))
            dev = values.get(f"{kind}{bus}.virtualdev", "").strip().lower() or _default_virtual_dev(kind)
            controllers[(kind, bus)] = Controller(kind, bus, dev)

    for kind, bus, unit in sorted(_iter_units(values), key=lambda u: (CONTROLLER_KINDS.index(u[0]), u[1], u[2])):
        prefix = f"{kind}{bus}:{unit}"
        if not is_true(values.get(f"{prefix}.present")):
            continue
        if (kind, bus) not in controllers:
            if kind != "ide" or bus > 1:
                continue  # a unit on a controller that is not there is ignored by VMware too
            controllers[(kind, bus)] = Controller(kind, bus, "ide")
        if unit > MAX_UNIT[kind]:
            raise VmxError(f"{prefix}: unit {unit} is out of range for a {kind} controller", path)
        device_type = values.get(f"{prefix}.devicetype", "").strip().lower()
        file_name = values.get(f"{prefix}.filename", "")
        if device_type in CDROM_DEVICE_TYPES:
            vm.cdroms.append(CdromRef(f"{kind}{bus}", kind, bus, unit, device_type, file_name))
        elif device_type in DISK_DEVICE_TYPES and file_name.lower().endswith(".vmdk"):
            vm.disks.append(DiskRef(f"{kind}{bus}", kind, bus, unit, file_name, resolve_path(folder, file_name),
                                    values.get(f"{prefix}.mode", "").strip().lower()))
    vm.controllers = [controllers[k] for k in sorted(controllers, key=lambda k: (CONTROLLER_KINDS.index(k[0]), k[1]))]

    nic_indexes = sorted(int(m.group(1)) for m in (_NIC_KEY.match(k) for k in values) if m)
    for index in nic_indexes:
        prefix = f"ethernet{index}"
        if not is_true(values.get(f"{prefix}.present")):
            continue
        connection = values.get(f"{prefix}.connectiontype", "").strip().lower() or "bridged"
        network = values.get(f"{prefix}.networkname", "").strip()
        if not network:
            network = values.get(f"{prefix}.vnet", "").strip() if connection == "custom" else ""
        address_type = values.get(f"{prefix}.addresstype", "generated").strip().lower()
        mac = values.get(f"{prefix}.address" if address_type == "static" else f"{prefix}.generatedaddress", "")
        vm.nics.append(Nic(
            index=index,
            virtual_dev=values.get(f"{prefix}.virtualdev", "").strip().lower() or "vlance",
            connection_type=connection,
            network=network or connection,
            address_type=address_type,
            mac=mac.strip().lower(),
        ))

    if is_true(values.get("ehci.present")):  # EHCI is the USB 2 part of the same controller, as OVF Tool writes it
        vm.usb.append("ehci")
    elif is_true(values.get("usb.present")):
        vm.usb.append("uhci")
    if is_true(values.get("usb_xhci.present")):
        vm.usb.append("xhci")
    if is_true(values.get("sound.present")):
        vm.sound = values.get("sound.virtualdev", "").strip().lower() or "es1371"
    vm.vmci = is_true(values.get("vmci0.present"))
    vm.floppy = is_true(values.get("floppy0.present"))
    return vm


def load_vm(vmx_path: str) -> VirtualMachine:
    """Read a .vmx and build its model."""
    warnings: List[str] = []
    original_keys: Dict[str, str] = {}
    vm = build_vm(read_vmx(vmx_path, warnings, original_keys), vmx_path)
    vm.warnings.extend(warnings)
    vm.original_keys = original_keys
    if vm.vtpm:
        vm.warnings.append(f"{vmx_path}: the VM has a virtual TPM, which an OVA cannot carry; the rest is exported "
                           "and the appliance needs a new vTPM (and re-sealed secrets) after import")
    return vm
