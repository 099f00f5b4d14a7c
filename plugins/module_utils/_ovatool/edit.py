# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Restamp an existing OVA (ours or another tool's) with an appliance spec, without recompressing anything.

The descriptor is rewritten with the sections the spec names (formats/appliance), the manifest is written again
with the algorithm it had, and every other member is copied byte for byte (``copy_file_range``: the kernel moves
the data; their manifest digests stay valid because their bytes do). A certificate is made again when a key is
given; a stale one is dropped, with a warning, when none is. The new OVA replaces the destination atomically;
applying the same spec twice changes nothing the second time.
"""
from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .errors import OutputError, OvatoolError, describe_os_error, os_error
from .formats import manifest, ovf
from .formats.appliance import parse_appliance
from .formats.appliance_read import describe_envelope
from .formats.appliance_write import apply_appliance
from .formats.ova import OvaWriter
from .formats.sign import Signer
from .output import AtomicOutput

MAX_HEAD_MEMBER = 16 * 1024 * 1024  # .ovf, .mf and .cert are read whole; anything larger is not one of them


@dataclass
class EditOptions:
    src: str
    appliance: Dict[str, Any]
    dest: Optional[str] = None  # default: src, replaced atomically
    private_key: Optional[str] = None
    private_key_passphrase: Optional[str] = None
    certificate: Optional[str] = None
    check_mode: bool = False


@dataclass
class _Member:
    name: str
    offset: int
    size: int
    mtime: int


def _members(path: str) -> List[_Member]:
    members = []
    try:
        with tarfile.open(path, "r:") as archive:
            for info in archive:
                if not info.isreg() or "/" in info.name or info.name in (".", ".."):
                    raise OvatoolError(f"member {info.name!r} is not a plain file; check the OVA with ova_verify", path)
                members.append(_Member(info.name, info.offset_data, info.size, int(info.mtime)))
    except (tarfile.TarError, EOFError) as exc:
        raise OvatoolError(f"not a readable OVA (tar): {exc}", path) from None
    except OSError as exc:
        raise os_error(exc, path, "cannot read") from None
    if not members or not members[0].name.lower().endswith(".ovf"):
        raise OvatoolError("the first member is not an .ovf descriptor", path)
    return members


def _read(path: str, member: _Member) -> bytes:
    if member.size > MAX_HEAD_MEMBER:
        raise OvatoolError(f"{member.name}: {member.size} bytes is too large for a descriptor or manifest", path)
    with open(path, "rb") as handle:
        handle.seek(member.offset)
        return handle.read(member.size)


def _copy(src_fd: int, member: _Member, out, writer: OvaWriter) -> None:
    """One member, byte for byte, through the kernel where it can (no copy through Python)."""
    writer.begin_member(member.name, member.size)
    out.flush()  # the buffered header first; the data goes straight to the file descriptor
    dst_fd = out.fileno()
    left, at = member.size, member.offset
    copy_range = getattr(os, "copy_file_range", None)
    while left and copy_range is not None:
        try:
            moved = copy_range(src_fd, dst_fd, left, at)
        except OSError:  # another file system, an old kernel: copy through a buffer
            break
        if moved == 0:
            raise OvatoolError(f"{member.name}: the OVA ends inside this member")
        left -= moved
        at += moved
    if left:
        while left:
            chunk = os.pread(src_fd, min(left, 8 << 20), at)
            if not chunk:
                raise OvatoolError(f"{member.name}: the OVA ends inside this member")
            os.write(dst_fd, chunk)
            left -= len(chunk)
            at += len(chunk)
    out.seek(0, os.SEEK_END)  # the buffered file learns where the descriptor's writes left it
    writer.end_member(member.size)


def edit_ova(options: EditOptions) -> Dict[str, Any]:
    src = os.path.abspath(os.path.expanduser(options.src))
    dest = os.path.abspath(os.path.expanduser(options.dest)) if options.dest else src
    if not os.path.isfile(src):
        raise OvatoolError("no such file" if not os.path.exists(src) else "not a regular file", src)
    if bool(options.private_key) != bool(options.certificate):
        raise OvatoolError("signing needs both private_key and certificate")
    appliance = parse_appliance(options.appliance)  # every problem of the spec before anything is read
    members = _members(src)
    ovf_member = members[0]
    before = _read(src, ovf_member)
    envelope = ovf.parse_ovf(before)
    namespace = ovf.descriptor_namespace(envelope)
    apply_appliance(envelope, appliance, namespace)
    after = ovf.render(envelope)

    by_kind = {kind: [m for m in members[1:] if m.name.lower().endswith(kind)] for kind in (".mf", ".cert")}
    mf_member = by_kind[".mf"][0] if by_kind[".mf"] else None
    cert_member = by_kind[".cert"][0] if by_kind[".cert"] else None
    others = [m for m in members[1:] if m is not mf_member and m is not cert_member]
    listed: Dict[str, Tuple[str, str]] = {}
    algorithm = "sha256"
    problems: List[str] = []
    if mf_member is not None:
        listed, found = manifest.parse(_read(src, mf_member).decode("utf-8", "replace"), problems)
        if problems:
            raise OvatoolError(f"{mf_member.name}: {problems[0]}; check the OVA with ova_verify", src)
        algorithm = found or algorithm
        if algorithm not in manifest.ALGORITHMS:
            raise OvatoolError(f"{mf_member.name}: {algorithm.upper()} digests cannot be written again", src)
    warnings: List[str] = []
    signer = Signer(options.private_key, options.certificate, options.private_key_passphrase, algorithm) \
        if options.private_key and options.certificate else None
    if cert_member is not None and signer is None and after != before:
        warnings.append(f"{cert_member.name} signed the old manifest and is left out; give private_key and "
                        "certificate to sign the new one")

    result: Dict[str, Any] = {"src": src, "dest": dest, "ovf": ovf_member.name, "manifest": algorithm,
                              "members": [m.name for m in members], "warnings": warnings,
                              "diff": {"before": before.decode("utf-8", "replace"),
                                       "after": after.decode("utf-8", "replace"),
                                       "before_header": f"{ovf_member.name} (before)",
                                       "after_header": f"{ovf_member.name} (after)"}}
    unchanged = after == before and dest == src and signer is None
    if unchanged:
        result.update(changed=False, msg="the OVA already says what the spec asks for")
        return result
    if options.check_mode:
        result.update(changed=True, msg=f"would write {dest}")
        return result
    if not os.path.isdir(os.path.dirname(dest)):
        raise OutputError(f"the destination folder {os.path.dirname(dest)} does not exist", dest)

    digests = [(ovf_member.name, _digest(algorithm, after))]
    for member in others:
        if mf_member is not None and member.name in listed:
            digests.append((member.name, listed[member.name][1]))
    manifest_bytes = manifest.render(algorithm, digests) if mf_member is not None else None
    try:
        with AtomicOutput(dest) as out, open(src, "rb") as source:
            writer = OvaWriter(out.stream, ovf_member.mtime, algorithm)
            writer.add(ovf_member.name, after)
            if manifest_bytes is not None:
                writer.add(mf_member.name, manifest_bytes)
                if signer is not None:
                    writer.add(cert_member.name if cert_member else os.path.splitext(mf_member.name)[0] + ".cert",
                               signer.cert_bytes(mf_member.name, manifest_bytes))
            for member in others:
                _copy(source.fileno(), member, out.stream, writer)
            writer.close()
            out.commit()
    except OSError as exc:
        raise OutputError(f"writing failed: {describe_os_error(exc)}", dest) from None
    result.update(changed=True, size=os.path.getsize(dest), signed=signer is not None and manifest_bytes is not None)
    return result


def _digest(algorithm: str, data: bytes) -> str:
    digest = manifest.new_hash(algorithm)
    digest.update(data)
    return digest.hexdigest()


def describe(path: str) -> Dict[str, Any]:
    """What an OVA's descriptor says about the appliance (product, properties, configurations, networks), read
    from its first member only."""
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise OvatoolError("no such file" if not os.path.exists(path) else "not a regular file", path)
    if path.lower().endswith(".ovf"):
        with open(path, "rb") as handle:
            data = handle.read(MAX_HEAD_MEMBER + 1)
        name = os.path.basename(path)
    else:
        first = _members(path)[0]
        data, name = _read(path, first), first.name
    envelope = ovf.parse_ovf(data)
    return dict(describe_envelope(envelope, ovf.descriptor_namespace(envelope)), path=path, ovf=name)
