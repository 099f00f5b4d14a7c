# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Is this OVA (or OVF folder) good? Archive, OVF, manifest, certificate and disk checks.

Nothing is extracted and nothing outside the archive is read or written: members
are read in place by offset, from a local file or, for an OVA in object storage,
from a URL by HTTP range requests (storage/httprange: no local copy). Digests and
disk checks of different members run in parallel (hashlib and zlib release the
GIL). Every problem becomes a sentence in ``problems``; only an unreadable input
raises.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .errors import OvatoolError, os_error
from .fileio import LocalFile
from .export.pipeline import resolve_threads
from .formats import manifest
from .formats.appliance_read import check_envelope
from .formats.ovf import MAX_OVF_BYTES, OVF2, descriptor_namespace, local_name, parse_ovf
from .formats.streamcheck import check_stream
from .formats.vmdk import MAGIC
from .protocols import RandomAccess
from .storage.httprange import RangedUrl

STREAM_FORMAT_SUFFIX = "#streamOptimized"
_CHUNK = re.compile(r"^(.*)\.(\d{9})$")


@dataclass
class Member:
    name: str
    offset: int  # of the data in the container file
    size: int
    source: RandomAccess  # the file holding the data


def _digest(member: Member, algorithm: str) -> str:
    return member.source.digest(algorithm, member.offset, member.size)


def _read(member: Member, limit: int) -> bytes:
    return member.source.pread(min(member.size, limit), member.offset)


def _tar_members(source: RandomAccess, problems: List[str]) -> List[Member]:
    size = source.size
    members: List[Member] = []
    try:
        with source.fileobj() as handle, tarfile.open(fileobj=handle, mode="r:") as archive:
            for info in archive:
                name = info.name
                if name.startswith("/") or "/" in name or "\\" in name or name in (".", "..") or ".." in name:
                    problems.append(f"member {name!r}: not a plain file name (absolute path, folder or ..)")
                    continue
                if not info.isreg():
                    problems.append(f"member {name!r}: not a regular file (a link, device or folder)")
                    continue
                if info.offset_data + info.size > size:
                    problems.append(f"member {name!r}: {info.size} bytes declared, past the end of the archive")
                    continue
                members.append(Member(name, info.offset_data, info.size, source))
    except (tarfile.TarError, EOFError) as exc:
        problems.append(f"the archive is damaged or truncated: {exc}")
    return members


def _folder_members(ovf_path: str, opened: List[LocalFile]) -> List[Member]:
    folder = os.path.dirname(os.path.abspath(ovf_path))
    names = [os.path.basename(ovf_path)] + [
        name for name in sorted(os.listdir(folder)) if name != os.path.basename(ovf_path)
        and os.path.isfile(os.path.join(folder, name)) and not os.path.islink(os.path.join(folder, name))]
    members = []
    for name in names:
        opened.append(LocalFile(os.path.join(folder, name)))
        members.append(Member(name, 0, opened[-1].size, opened[-1]))
    return members


def _references(envelope: ET.Element, ns: str) -> List[Dict[str, Any]]:
    refs = []
    for element in envelope.iter(f"{{{ns}}}File"):
        size = element.get(f"{{{ns}}}size")
        chunk = element.get(f"{{{ns}}}chunkSize")
        refs.append({"href": element.get(f"{{{ns}}}href", ""), "id": element.get(f"{{{ns}}}id", ""),
                     "size": int(size) if size and size.isdigit() else None,
                     "chunked": bool(chunk)})
    return refs


def _stream_files(envelope: ET.Element, ns: str) -> Dict[str, Dict[str, Any]]:
    """file id -> disk facts for disks declared streamOptimized."""
    disks = {}
    for disk in envelope.iter(f"{{{ns}}}Disk"):
        if (disk.get(f"{{{ns}}}format") or "").endswith(STREAM_FORMAT_SUFFIX):
            disks[disk.get(f"{{{ns}}}fileRef", "")] = {"disk_id": disk.get(f"{{{ns}}}diskId")}
    return disks


def check_structure(envelope: ET.Element, ns: str, problems: List[str]) -> None:
    """What makes a descriptor inconsistent although it parses: files and disks that do not point at each
    other, InstanceIDs used twice in one hardware section, configurations nobody declared."""
    file_ids = [element.get(f"{{{ns}}}id", "") for element in envelope.iter(f"{{{ns}}}File")]
    used = set()
    for disk in envelope.iter(f"{{{ns}}}Disk"):
        ref = disk.get(f"{{{ns}}}fileRef")
        if ref is None:
            continue  # a blank disk, created empty on deployment
        used.add(ref)
        if ref not in file_ids:
            problems.append(f"Disk {disk.get(f'{{{ns}}}diskId')!r}: ovf:fileRef {ref!r} names no File in References")
    for element in envelope.iter():
        for value in list(element.attrib.values()) + [element.text or ""]:
            used.update(re.findall(r"ovf:/file/([^\s/<>\"']+)", value))
    for file_id in file_ids:
        if file_id not in used:
            problems.append(f"File {file_id!r} is in References but no disk or device refers to it")
    declared = {c.get(f"{{{ns}}}id", "") for c in envelope.iter(f"{{{ns}}}Configuration")}
    for element in envelope.iter():
        for name in (element.get(f"{{{ns}}}configuration") or "").split():
            if name not in declared:
                problems.append(f"{local_name(element.tag)}: ovf:configuration {name!r} is not declared in a "
                                "DeploymentOptionSection")
    for section in envelope.iter(f"{{{ns}}}VirtualHardwareSection"):
        seen: Dict[str, int] = {}
        for item in section:
            for child in item:
                if local_name(child.tag) == "InstanceID" and child.text is not None:
                    seen[child.text.strip()] = seen.get(child.text.strip(), 0) + 1
        for instance, count in sorted(seen.items()):
            if count > 1:
                problems.append(f"VirtualHardwareSection: rasd:InstanceID {instance} is used by {count} Items")


def verify_signature(cert: Member, mf: Member, problems: List[str]) -> Dict[str, Any]:
    """Check ``SHA256(x.mf)= <signature hex>`` + PEM certificate over the manifest."""
    text = _read(cert, 1 << 20).decode("ascii", "replace")
    match = next((m for m in map(manifest.LINE.match, text.splitlines()) if m), None)
    pem = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
    if not match or not pem:
        problems.append(f"{cert.name}: no signature line or no PEM certificate")
        return {"present": True, "valid": False}
    algorithm, signature = match.group(1).lower(), bytes.fromhex(match.group(3))
    data = _read(mf, 16 << 20)
    try:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        certificate = x509.load_pem_x509_certificate(pem.group(0).encode())
        try:
            certificate.public_key().verify(signature, data, padding.PKCS1v15(), getattr(hashes, algorithm.upper())())
            valid = True
        except (InvalidSignature, UnsupportedAlgorithm, TypeError, ValueError):  # TypeError: not an RSA key
            valid = False
        method = "cryptography"
        subject = certificate.subject.rfc4514_string()
    except ImportError:
        valid, subject = _openssl_verify(pem.group(0), signature, data, algorithm, problems)
        method = "openssl"
    if not valid:
        problems.append(f"{cert.name}: the signature over {mf.name} does not verify against its certificate")
    return {"present": True, "valid": valid, "algorithm": algorithm, "method": method, "subject": subject}


def _openssl_verify(pem: str, signature: bytes, data: bytes, algorithm: str, problems: List[str]):
    openssl = shutil.which("openssl")
    if openssl is None:
        problems.append("cannot check the certificate: neither the cryptography package nor openssl is available")
        return False, ""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, content in (("cert.pem", pem.encode()), ("sig", signature), ("data", data)):
            paths[name] = os.path.join(tmp, name)
            with open(paths[name], "wb") as handle:
                handle.write(content)
        key = subprocess.run([openssl, "x509", "-in", paths["cert.pem"], "-pubkey", "-noout"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        paths["key"] = os.path.join(tmp, "key.pem")
        with open(paths["key"], "wb") as handle:
            handle.write(key.stdout)
        done = subprocess.run([openssl, "dgst", f"-{algorithm}", "-verify", paths["key"], "-signature",
                               paths["sig"], paths["data"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              check=False)
        subject = subprocess.run([openssl, "x509", "-in", paths["cert.pem"], "-noout", "-subject"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    return done.returncode == 0, subject.stdout.decode(errors="replace").strip()


def verify(path: str, deep: bool = False, require_manifest: bool = False, threads: int = 0,
           url: Optional[str] = None, validate_certs: bool = True) -> Dict[str, Any]:
    """Check an ``.ova`` (or an ``.ovf`` with its files beside it); never raises for findings.

    ``url``: read the OVA from there (an http(s) URL answering range requests, such as a presigned S3 GET)
    and report it as ``path``."""
    opened: List[LocalFile] = []
    try:
        if url:
            return _verify(path, [], RangedUrl(url, validate_certs=validate_certs, label=path), deep,
                           require_manifest, threads)
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(path):
            raise OvatoolError("no such file" if not os.path.exists(path) else "not a regular file", path)
        try:
            if path.lower().endswith(".ovf"):
                return _verify(path, _folder_members(path, opened), None, deep, require_manifest, threads)
            opened.append(LocalFile(path))
        except OSError as exc:
            raise os_error(exc, path, "cannot read") from None
        return _verify(path, [], opened[0], deep, require_manifest, threads)
    finally:
        for source in opened:
            source.close()


@dataclass
class Package:
    """What every check of one package reads, and where each says what it found."""

    path: str
    members: List[Member]
    is_folder: bool  # an OVF folder (no member order, and side files need no manifest entry)
    result: Dict[str, Any]
    problems: List[str] = field(default_factory=list)

    @property
    def by_name(self) -> Dict[str, Member]:
        return {m.name: m for m in self.members}

    def ending(self, suffix: str) -> List[Member]:
        return [m for m in self.members if m.name.lower().endswith(suffix)]


@dataclass(frozen=True)
class DigestJob:
    """Hash a member and compare it with its manifest line."""

    member: Member
    algorithm: str
    expected: str


@dataclass(frozen=True)
class StreamJob:
    """Walk a streamOptimized disk member (``deep``: inflate every grain)."""

    member: Member
    disk_id: str


def _descriptor(package: Package) -> Optional[Tuple[Member, ET.Element, str]]:
    """The .ovf member, first in an OVA, parsed: (member, envelope, namespace), or None when there is none to
    check further."""
    ovfs = package.ending(".ovf")
    if not ovfs:
        package.problems.append("no .ovf descriptor in the archive")
        return None
    if not package.members[0].name.lower().endswith(".ovf"):
        package.problems.append(f"the .ovf is not the first member (the first is {package.members[0].name})")
    ovf_member = ovfs[0]
    if ovf_member.size > MAX_OVF_BYTES:
        package.problems.append(f"{ovf_member.name}: {ovf_member.size} bytes is too large for an OVF descriptor")
        return None
    try:
        envelope = parse_ovf(_read(ovf_member, MAX_OVF_BYTES))
        ns = descriptor_namespace(envelope)
    except OvatoolError as exc:
        package.problems.append(f"{ovf_member.name}: {exc.message}")
        return None
    return ovf_member, envelope, ns


def _check_references(package: Package, envelope: ET.Element, ns: str) -> Dict[str, List[Member]]:
    """Every file the OVF references is there, as large as ovf:size says; returns file id -> its members (the
    parts of a chunked file)."""
    by_name = package.by_name
    referenced: Dict[str, List[Member]] = {}
    for ref in _references(envelope, ns):
        href = ref["href"]
        if ref["chunked"]:
            parts = sorted((m for m in package.members if _CHUNK.match(m.name)
                            and _CHUNK.match(m.name).group(1) == href), key=lambda m: m.name)
        else:
            parts = [by_name[href]] if href in by_name else []
        if not parts:
            package.problems.append(f"{href}: referenced by the OVF but not in the archive")
            continue
        referenced[ref["id"]] = parts
        actual = sum(p.size for p in parts)
        if ref["size"] is not None and ref["size"] != actual:
            package.problems.append(f"{href}: ovf:size says {ref['size']} bytes, the archive holds {actual}")
    return referenced


def _check_manifest(package: Package, ovf_member: Member, referenced: Dict[str, List[Member]],
                    require_manifest: bool) -> List[DigestJob]:
    """The .mf, second in an OVA, lists every member that needs it and nothing else; returns a digest job per
    listed member."""
    problems, members = package.problems, package.members
    mf_members = package.ending(".mf")
    if not mf_members:
        if require_manifest:
            problems.append("no manifest (.mf) in the archive")
        return []
    mf = mf_members[0]
    if not package.is_folder and (len(members) < 2 or members[1] is not mf):
        problems.append(f"{mf.name} is not the second member, right after the .ovf")
    listed, algorithm = manifest.parse(_read(mf, 16 << 20).decode("utf-8", "replace"), problems)
    package.result["algorithm"] = algorithm
    by_name = package.by_name
    for name in listed:
        if name not in by_name:
            problems.append(f"{name}: listed in the manifest but not in the archive")
    exempt = {mf.name} | {m.name for m in package.ending(".cert")}
    for member in members:
        if member.name not in listed and member.name not in exempt:
            if not package.is_folder or any(member in parts for parts in referenced.values()) \
                    or member is ovf_member:
                problems.append(f"{member.name}: not listed in the manifest")
    return [DigestJob(member, *listed[member.name]) for member in members if member.name in listed]


def _check_signature(package: Package) -> None:
    """The .cert's signature of the .mf, when both are there."""
    certs, mf_members = package.ending(".cert"), package.ending(".mf")
    package.result["signature"] = {"present": False}
    if certs and mf_members:
        package.result["signature"] = verify_signature(certs[0], mf_members[0], package.problems)


def _stream_jobs(envelope: ET.Element, ns: str, referenced: Dict[str, List[Member]],
                 disks: List[Dict[str, Any]]) -> List[StreamJob]:
    """A job per streamOptimized disk in one member; a chunked one is noted in ``disks`` unchecked."""
    jobs = []
    for file_id, facts in _stream_files(envelope, ns).items():
        parts = referenced.get(file_id)
        if not parts:
            continue
        if len(parts) > 1:
            disks.append({"name": parts[0].name, "disk_id": facts["disk_id"], "checked": False,
                          "note": "chunked: structure not checked, digests only"})
            continue
        jobs.append(StreamJob(parts[0], facts["disk_id"]))
    return jobs


def _run_jobs(package: Package, digests: List[DigestJob], streams: List[StreamJob], deep: bool,
              threads: int) -> List[Dict[str, Any]]:
    """The digests and the disk walks on ``threads`` threads; their findings in job order; returns the disks."""
    disks: List[Dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=resolve_threads(threads)) as pool:
        hashed = [pool.submit(_digest, job.member, job.algorithm) for job in digests]
        walked = [pool.submit(_check_stream_member, job.member, deep) for job in streams]
        for job, future in zip(digests, hashed):
            if future.result() != job.expected:
                package.problems.append(f"member {job.member.name}: {job.algorithm.upper()} differs from the manifest")
        for stream, future in zip(streams, walked):
            findings, disk_facts = future.result()
            package.problems.extend(findings)
            disks.append(dict(name=stream.member.name, disk_id=stream.disk_id, checked=True, deep=deep,
                              problems=len(findings), **disk_facts))
    return disks


def _verify(path: str, members: List[Member], archive: Optional[RandomAccess], deep: bool, require_manifest: bool,
            threads: int) -> Dict[str, Any]:
    """``members`` of an OVF folder, or the ``archive`` (an OVA) to list them from."""
    problems: List[str] = []
    if archive is not None:
        try:
            members = _tar_members(archive, problems)
        except OSError as exc:
            raise os_error(exc, path, "cannot read") from None
    is_folder = archive is None
    result = {"path": path, "format": "ovf" if is_folder else "ova",
              "members": [{"name": m.name, "size": m.size} for m in members]}
    package = Package(path, members, is_folder, result, problems)
    found = _descriptor(package)
    if found is None:
        return _finish(package.result, problems)
    ovf_member, envelope, ns = found
    package.result["ovf_version"] = "2.0" if ns == OVF2 else "1.x"
    check_structure(envelope, ns, problems)
    problems.extend(check_envelope(envelope, ns))
    referenced = _check_references(package, envelope, ns)
    digests = _check_manifest(package, ovf_member, referenced, require_manifest)
    _check_signature(package)
    chunked: List[Dict[str, Any]] = []
    streams = _stream_jobs(envelope, ns, referenced, chunked)
    package.result["disks"] = chunked + _run_jobs(package, digests, streams, deep, threads)
    package.result["digests_checked"] = len(digests)
    return _finish(package.result, problems)


def _check_stream_member(member: Member, deep: bool):
    if member.source.pread(4, member.offset) != MAGIC:
        return [f"{member.name}: declared streamOptimized but has no VMDK sparse header"], {}
    return check_stream(member.source, member.offset, member.size, member.name, deep)


def _finish(result: Dict[str, Any], problems: List[str]) -> Dict[str, Any]:
    result["problems"] = problems
    result["ok"] = not problems
    return result
