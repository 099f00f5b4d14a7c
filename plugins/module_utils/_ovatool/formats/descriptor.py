# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VMDK text descriptors: parsing what VMware and qemu write, rendering ours.

Facts (docs/formats.md, VMDK inputs): extent lines are ``ACCESS SECTORS TYPE "FILE"
[OFFSET]``; ``createType`` names the layout; ``parentCID`` other than
ffffffff marks a child; VMware's files carry trailing spaces and comments.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..errors import DiskFormatError, VmxError
from .vmx import python_encoding

MAX_DESCRIPTOR_BYTES = 1024 * 1024
NO_PARENT = 0xFFFFFFFF

EXTENT_TYPES = ("FLAT", "SPARSE", "ZERO", "VMFS", "VMFSSPARSE", "VMFSRDM", "VMFSRAW", "SESPARSE")
_EXTENT = re.compile(
    r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+([A-Z]+)(?:\s+"([^"]*)"(?:\s+(\d+))?)?\s*$'
)
_KEY_VALUE = re.compile(r'^([A-Za-z0-9_.]+)\s*=\s*"?(.*?)"?\s*$')


@dataclass
class ExtentLine:
    access: str
    sectors: int
    type: str
    file_name: str
    offset: int  # sectors into the file (FLAT/VMFS only)


@dataclass
class Descriptor:
    create_type: str
    cid: int
    parent_cid: int
    parent_hint: str
    extents: List[ExtentLine]
    ddb: Dict[str, str] = field(default_factory=dict)
    encoding: str = "UTF-8"

    @property
    def capacity_sectors(self) -> int:
        return sum(e.sectors for e in self.extents)

    @property
    def has_parent(self) -> bool:
        return self.parent_cid != NO_PARENT


def _hex32(value: str, what: str, path: str) -> int:
    try:
        number = int(value.strip(), 16)
    except ValueError:
        raise DiskFormatError(f'descriptor {what} "{value}" is not a hexadecimal number', path) from None
    if not 0 <= number <= 0xFFFFFFFF:
        raise DiskFormatError(f"descriptor {what} {value} is out of range", path)
    return number


def decode_descriptor(raw: bytes, path: str, embedded: bool = False) -> str:
    """Decode descriptor bytes by their own ``encoding=`` line.

    A descriptor is a C string, embedded or in its own file: it ends at the
    first NUL, and what follows is padding that some writers leave
    uninitialised (qemu-img's monolithicSparse and twoGbMaxExtentFlat files
    were seen with stray bytes after the NUL, now and then).
    """
    raw = raw.split(b"\x00", 1)[0]
    if not raw.strip():
        raise DiskFormatError("not a VMDK descriptor: no text before binary data" if not embedded
                              else "the embedded descriptor is empty", path)
    match = re.search(rb'^\s*encoding\s*=\s*"([^"]+)"', raw, re.M | re.I)
    encoding = "utf-8"
    if match:
        try:
            encoding = python_encoding(match.group(1).decode("ascii", "replace"))
        except VmxError:  # an encoding Python does not know: read it as UTF-8, replacing what does not fit
            encoding = "utf-8"
    return raw.decode(encoding, errors="replace")


def parse_descriptor(text: str, path: str) -> Descriptor:
    """Parse a descriptor; raise DiskFormatError naming the line on junk."""
    header: Dict[str, str] = {}
    ddb: Dict[str, str] = {}
    extents: List[ExtentLine] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _EXTENT.match(stripped)
        if match:
            access, sectors, kind, file_name, offset = match.groups()
            if kind not in EXTENT_TYPES:
                raise DiskFormatError(f"line {number}: unknown extent type {kind}", path)
            if kind != "ZERO" and not file_name:
                raise DiskFormatError(f"line {number}: a {kind} extent needs a file name", path)
            extents.append(ExtentLine(access, int(sectors), kind, file_name or "", int(offset or 0)))
            continue
        match = _KEY_VALUE.match(stripped)
        if not match:
            raise DiskFormatError(f"line {number} of the descriptor does not parse: {stripped[:80]!r}", path)
        key, value = match.group(1), match.group(2).strip()
        if key.lower().startswith("ddb."):
            ddb[key] = value
        else:
            header[key.lower()] = value
    if "createtype" not in header:
        raise DiskFormatError("not a VMDK descriptor: no createType", path)
    if not extents:
        raise DiskFormatError("the descriptor lists no extents", path)
    return Descriptor(
        create_type=header["createtype"],
        cid=_hex32(header.get("cid", "ffffffff"), "CID", path),
        parent_cid=_hex32(header.get("parentcid", "ffffffff"), "parentCID", path),
        parent_hint=header.get("parentfilenamehint", ""),
        extents=extents,
        ddb=ddb,
        encoding=header.get("encoding", "UTF-8"),
    )


def geometry(capacity_sectors: int) -> Dict[str, int]:
    """The BIOS geometry VMware writes for a stream disk: 255 heads, 63 sectors."""
    cylinders = min(65535, max(1, capacity_sectors // (255 * 63)))
    return {"cylinders": cylinders, "heads": 255, "sectors": 63}


def render_stream_descriptor(
    file_name: str,
    capacity_sectors: int,
    ids: Tuple[int, str],
    adapter_type: str,
    hardware_version: int,
    tools: Tuple[Optional[str], Optional[str]] = (None, None),
) -> str:
    """The descriptor embedded in a streamOptimized disk (docs/formats.md, streamOptimized). ``ids``: the CID and
    the long content ID; ``tools``: VMware Tools' version and install type, as the source disk says."""
    cid, long_content_id = ids
    tools_version, tools_install_type = tools
    geo = geometry(capacity_sectors)
    safe_name = file_name.replace('"', "_")
    lines = [
        "# Disk DescriptorFile",
        "version=1",
        "encoding=\"UTF-8\"",
        f"CID={cid:08x}",
        "parentCID=ffffffff",
        'createType="streamOptimized"',
        "",
        "# Extent description",
        f'RDONLY {capacity_sectors} SPARSE "{safe_name}"',
        "",
        "# The Disk Data Base",
        "#DDB",
        "",
        f'ddb.adapterType = "{adapter_type}"',
        f'ddb.geometry.cylinders = "{geo["cylinders"]}"',
        f'ddb.geometry.heads = "{geo["heads"]}"',
        f'ddb.geometry.sectors = "{geo["sectors"]}"',
        f'ddb.longContentID = "{long_content_id}"',
        f'ddb.toolsInstallType = "{tools_install_type or "0"}"',
        f'ddb.toolsVersion = "{tools_version or "2147483647"}"',
        f'ddb.virtualHWVersion = "{hardware_version}"',
        "",
    ]
    return "\n".join(lines)
