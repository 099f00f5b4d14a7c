# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Independent checks of an OVA: Python's tarfile and hashlib, qemu-img, vmdkinfo.

Nothing here uses the engine: these are the oracles the tests trust.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from typing import Dict, List

OVF_NS = "http://schemas.dmtf.org/ovf/envelope/1"
RASD_NS = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
_LINE = re.compile(r"^(SHA1|SHA256|SHA512)\((.+)\)= ([0-9a-f]+)$")


def read_ova(path: str) -> Dict[str, object]:
    """Open the OVA with tarfile; check order, manifest digests and OVF sizes; return what it holds."""
    with tarfile.open(path, "r:") as archive:
        members = archive.getmembers()
        names = [m.name for m in members]
        assert names[0].endswith(".ovf"), f"first member is {names[0]}"
        assert names[1].endswith(".mf"), f"second member is {names[1]}"
        for member in members:
            assert member.isreg(), f"{member.name} is not a regular file"
            assert "/" not in member.name and ".." not in member.name
        ovf_bytes = archive.extractfile(members[0]).read()
        mf_text = archive.extractfile(members[1]).read().decode("ascii")
        manifest = {}
        algorithm = None
        for line in mf_text.splitlines():
            match = _LINE.match(line)
            assert match, f"manifest line {line!r} is not NAME(file)= hex"
            algorithm = match.group(1).lower()
            manifest[match.group(2)] = match.group(3)
        assert set(manifest) == set(names) - {names[1]}, (sorted(manifest), names)
        sizes = {}
        for member in members:
            if member.name == names[1]:
                continue
            digest = hashlib.new(algorithm)
            handle = archive.extractfile(member)
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
            assert digest.hexdigest() == manifest[member.name], f"digest of {member.name} differs"
            sizes[member.name] = member.size
    envelope = ET.fromstring(ovf_bytes)
    for file_el in envelope.iter(f"{{{OVF_NS}}}File"):
        href = file_el.get(f"{{{OVF_NS}}}href")
        assert href in sizes, f"{href} is referenced but not in the archive"
        assert int(file_el.get(f"{{{OVF_NS}}}size")) == sizes[href], f"ovf:size of {href}"
    return {"names": names, "ovf": ovf_bytes, "envelope": envelope, "manifest": manifest,
            "algorithm": algorithm, "sizes": sizes}


def extract(path: str, name: str, dest_dir: str) -> str:
    target = os.path.join(dest_dir, name)
    with tarfile.open(path, "r:") as archive:
        source = archive.extractfile(name)
        with open(target, "wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                out.write(block)
    return target


def run(argv: List[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)


def assert_same_disk(raw: str, vmdk: str) -> None:
    """The exported disk passes qemu-img check and vmdkinfo, and equals the source byte for byte."""
    check = run(["qemu-img", "check", "-f", "vmdk", vmdk])
    assert check.returncode == 0, check.stdout
    info = run(["vmdkinfo", vmdk])
    assert info.returncode == 0 and "Stream optimized" in info.stdout, info.stdout
    compare = run(["qemu-img", "compare", "-f", "raw", "-F", "vmdk", raw, vmdk])
    assert compare.returncode == 0, compare.stdout
    size = run(["qemu-img", "info", "--output=json", "-f", "vmdk", vmdk])
    assert f'"virtual-size": {os.path.getsize(raw) + (-os.path.getsize(raw) % 512)}' in size.stdout, size.stdout


def disk_items(envelope: ET.Element) -> List[ET.Element]:
    return [item for item in envelope.iter(f"{{{OVF_NS}}}Item")
            if item.findtext(f"{{{RASD_NS}}}ResourceType") == "17"]


def disk_capacity(disk: ET.Element) -> int:
    """Bytes from ovf:capacity and ovf:capacityAllocationUnits ("byte", "byte * 2^N")."""
    units = disk.get(f"{{{OVF_NS}}}capacityAllocationUnits", "byte")
    match = re.fullmatch(r"byte(?:\s*\*\s*2\^(\d+))?", units.strip())
    assert match, f"unexpected capacityAllocationUnits {units!r}"
    return int(disk.get(f"{{{OVF_NS}}}capacity")) << int(match.group(1) or 0)
