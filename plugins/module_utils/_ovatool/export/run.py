# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VMX -> OVA: the whole export, shared by the Ansible module and the command."""
from __future__ import annotations

import hashlib
import json
import os
import time
import xml.etree.ElementTree as ET
import zlib
from contextlib import ExitStack
from typing import Any, Dict, List, Optional, Tuple

from ..errors import OutputError, OvatoolError, VmxError, describe_os_error
from ..fileio import replace_small_file
from ..formats import manifest, ovf
from ..formats.appliance import apply_appliance
from ..formats.descriptor import render_stream_descriptor
from ..formats.disk import VirtualDisk, open_disk
from ..formats.ova import OvaWriter
from ..formats.sign import Signer
from ..formats.stream import StreamVmdkWriter
from ..formats.vmdk import GRAIN_BYTES, GTES_PER_GT, SECTOR
from ..formats.vmx import DiskRef, VirtualMachine
from ..host.slots import ExportSlot
from ..output import AtomicFolder, AtomicOutput, CancelOnSignal, DestLock, remove_leftovers
from ..protocols import PackageWriter
from ..storage.multipart import MultipartStream
from ..storage.presigned import Link
from ..storage.retry import RetryWindow
from ..storage.urlbook import SignedUrls, renewal_path
from .folder import FolderWriter
from .gentle import Gentle, ReadLimit
from .pipeline import allocated_bytes, run_pipeline
from .plan import ExportOptions, ExportPlan, ProgressCallback, plan_export, resolve_dest
from .profile import Profile

ADAPTER_TYPES = ("ide", "buslogic", "lsilogic", "legacyESX")
MB = 1000 * 1000
PLACEHOLDER = 10 ** 20 - 1  # sizes in the OVF before they are known: as wide as any real one


def _adapter_type(vm: VirtualMachine, ref: DiskRef, disk: VirtualDisk) -> str:
    source = disk.descriptor.ddb.get("ddb.adapterType", "")
    if source in ADAPTER_TYPES:
        return source
    if ref.kind in ("ide", "sata"):
        return "ide"
    controller = next((c for c in vm.controllers if c.name == ref.controller), None)
    return "buslogic" if controller is not None and controller.virtual_dev == "buslogic" else "lsilogic"


def _content_ids(seed: str) -> tuple:
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()
    return zlib.crc32(seed.encode("utf-8")) & 0xFFFFFFFF, digest[:32]


def source_mtime(paths: List[str]) -> int:
    """Newest modification time of the sources: the archive's member mtime (reproducible)."""
    newest = 0
    for path in paths:
        try:
            newest = max(newest, int(os.stat(path).st_mtime))
        except OSError:
            pass
    return newest


def open_vm_disks(plan: ExportPlan, stack: ExitStack) -> List[VirtualDisk]:
    disks = []
    for planned in plan.disks:
        ref = planned.ref
        if not os.path.exists(ref.path):
            raise VmxError(f'disk {ref.address} "{ref.file_name}" is missing ({ref.path})', plan.vmx)
        disks.append(stack.enter_context(open_disk(ref.path)))
    return disks


def _copy_member(container, name: str, path: str, read_limit: Optional[ReadLimit] = None) -> int:
    """Stream a side file (NVRAM, ISO) into the package; returns its size."""
    member = container.member(name)
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                if read_limit is not None:
                    read_limit.consume(len(block))
                member.write(block)
    except OSError as exc:
        raise VmxError(f"cannot read {path}: {exc.strerror}", path) from None
    member.close()
    return member.size


def _placeholder_disks(plan: ExportPlan, disks: List[VirtualDisk]) -> List[ovf.OvfDisk]:
    return [ovf.OvfDisk(p.ref.controller, p.ref.unit, p.href, p.file_id, p.disk_id, disk.capacity,
                        PLACEHOLDER, PLACEHOLDER) for p, disk in zip(plan.disks, disks)]


def _envelope(plan: ExportPlan, planned: List[ovf.OvfDisk], side_sizes: Dict[str, int]) -> ET.Element:
    extra = [(side.href, side.file_id, side_sizes[side.href]) for side in plan.side_files]
    built = ovf.build_envelope(plan.vm, plan.name, planned, extra, plan.ovf_options())
    apply_appliance(built, plan.appliance)
    return built


def _head_sizes(plan: ExportPlan, planned: List[ovf.OvfDisk], side_sizes: Dict[str, int],
                signer: Optional[Signer]) -> Tuple[int, int, int]:
    """Bytes reserved for the .ovf (rendered with placeholder sizes as wide as any real one), the .mf and the
    .cert (0 unsigned): the head of the package, written last."""
    listed = [plan.ovf_name] + [p.href for p in plan.disks] + [side.href for side in plan.side_files]
    return (len(ovf.render(_envelope(plan, planned, side_sizes))), manifest.size_of(plan.algorithm, listed),
            len(signer.cert_bytes(plan.mf_name, b"size probe")) if signer else 0)


def package_bound(plan: ExportPlan, disks: List[VirtualDisk], signer: Optional[Signer] = None) -> int:
    """The most bytes the OVA of ``plan`` can take (a metadata walk only): what sizes an upload's parts.

    A grain record holds at most a grain that deflate could not shrink (stored blocks add 5 bytes per 16 KiB,
    zlib 6), its 12-byte marker, padded to a sector: 129 sectors. Grain tables, the directory, markers and
    the footer take 4 bytes per grain of capacity plus a sector per table; a MiB per member covers headers,
    the embedded descriptor and padding.
    """
    member = 1 << 20
    side_sizes = {side.href: PLACEHOLDER for side in plan.side_files}
    total = sum(_head_sizes(plan, _placeholder_disks(plan, disks), side_sizes, signer)) + 3 * member
    for disk in disks:
        grains = -(-allocated_bytes(disk) // GRAIN_BYTES)
        capacity_grains = -(-disk.capacity // GRAIN_BYTES)
        total += member + grains * (GRAIN_BYTES + 512 + SECTOR) + capacity_grains * 4 \
            + -(-capacity_grains // GTES_PER_GT) * SECTOR * 2
    for side in plan.side_files:
        total += member + os.path.getsize(side.path)
    return total


def write_package(container: PackageWriter, plan: ExportPlan, disks: List[VirtualDisk],
                  signer: Optional[Signer] = None, progress: Optional[ProgressCallback] = None,
                  profile: Optional[Profile] = None, read_limit: Optional[ReadLimit] = None) -> Dict[str, Any]:
    """Write the .ovf, .mf, optional .cert, the disks and the side files into ``container`` in one pass.

    ``container`` is an OvaWriter (tar) or a FolderWriter (``format: ovf``); both reserve the head
    members and fill them at the end, once every size and digest is known.
    """
    vm = plan.vm
    planned = _placeholder_disks(plan, disks)
    side_sizes = {side.href: PLACEHOLDER for side in plan.side_files}

    reserved, mf_size, cert_size = _head_sizes(plan, planned, side_sizes, signer)
    ovf_slot = container.reserve(plan.ovf_name, reserved)
    mf_slot = container.reserve(plan.mf_name, mf_size)
    cert_slot = container.reserve(plan.cert_name, cert_size) if signer else None

    totals = [allocated_bytes(disk) for disk in disks] if progress else [0] * len(disks)
    done = 0
    results = []
    for index, (target, disk) in enumerate(zip(plan.disks, disks)):
        ref, href = target.ref, target.href
        cid, long_id = _content_ids(f"{plan.name}|{href}|{disk.descriptor.cid:08x}|{disk.capacity}")
        descriptor = render_stream_descriptor(
            href, disk.capacity // 512, cid, long_id, _adapter_type(vm, ref, disk), vm.hardware_version,
            disk.descriptor.ddb.get("ddb.toolsVersion"), disk.descriptor.ddb.get("ddb.toolsInstallType"))
        member = container.member(href)
        writer = StreamVmdkWriter(member.write, disk.capacity // 512, descriptor)
        disk_done = 0

        def on_batch(length: int, _href: str = href, _index: int = index) -> None:
            nonlocal done, disk_done
            done += length
            disk_done += length
            if progress is not None:
                progress({"disk": _href, "disk_index": _index, "disks": len(disks), "disk_done": disk_done,
                          "disk_total": totals[_index], "done_bytes": done, "total_bytes": sum(totals)})

        stats = run_pipeline(disk, writer, plan.codec, plan.threads, on_batch if progress else None,
                             profile=profile, read_limit=read_limit)
        member.close()
        planned[index].populated = stats.data_bytes
        planned[index].file_size = member.size
        results.append({
            "source": disk.path, "href": href, "controller": ref.controller, "unit": ref.unit,
            "create_type": disk.create_type, "capacity_bytes": disk.capacity,
            "allocated_bytes": stats.allocated_bytes, "populated_bytes": stats.data_bytes,
            "written_bytes": member.size, "seconds": round(stats.seconds, 3),
        })
    for side in plan.side_files:
        side_sizes[side.href] = _copy_member(container, side.href, side.path, read_limit)

    ovf_digest = container.fill(ovf_slot, ovf.render(_envelope(plan, planned, side_sizes), pad_to=reserved))
    digests = [(plan.ovf_name, ovf_digest)] + list(container.digests)
    manifest_bytes = manifest.render(plan.algorithm, digests)
    container.fill(mf_slot, manifest_bytes)
    if signer is not None and cert_slot is not None:
        container.fill(cert_slot, signer.cert_bytes(plan.mf_name, manifest_bytes))
    container.close()
    members = [{"name": n, "size": container.sizes[n], "digest": d} for n, d in digests]
    members.insert(1, {"name": plan.mf_name, "size": container.sizes[plan.mf_name], "digest": None})
    if signer is not None:
        members.insert(2, {"name": plan.cert_name, "size": container.sizes[plan.cert_name], "digest": None})
    return {"disks": results, "members": members, "digests": dict(digests), "size": container.position,
            "signed": signer is not None}


def fingerprint(sources: List[str], plan: ExportPlan) -> str:
    """What the package was made from: every source file's size and mtime, and the options that shape it."""
    files = []
    for path in sources:
        try:
            info = os.stat(path)
            files.append([os.path.abspath(path), info.st_size, info.st_mtime_ns])
        except OSError:
            files.append([os.path.abspath(path), None, None])
    shape = {"name": plan.name, "format": plan.format, "manifest": plan.algorithm, "flags": list(plan.flags),
             "max_hardware_version": plan.max_hardware_version, "include_images": plan.include_images,
             "signed": plan.signing is not None, "appliance": repr(plan.appliance)}
    return hashlib.sha256(json.dumps([files, shape], sort_keys=True).encode()).hexdigest()


def fingerprint_path(dest: str) -> str:
    return os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.source")


def read_fingerprint(dest: str) -> Optional[str]:
    try:
        with open(fingerprint_path(dest)) as handle:
            return handle.read().strip()
    except OSError:
        return None


def write_fingerprint(dest: str, stamp: str) -> None:
    """Recorded beside the package (a hidden file), for ``refresh`` to tell a current package from a stale one."""
    try:
        replace_small_file(fingerprint_path(dest), stamp + "\n")
    except OSError:
        pass  # without it, refresh exports again: safe


def _open_upload(plan: ExportPlan, upload: Dict[str, Any], options: ExportOptions) -> MultipartStream:
    progress = options.progress
    note = getattr(progress, "note", None)  # a progress file says why the export waits

    def waiting(silent: float) -> None:
        if note is not None:
            note(f"object store unreachable since {silent:.0f} s, retrying for up to {options.retry_seconds:.0f} s")

    link = Link(float(upload.get("timeout") or 60), bool(upload.get("validate_certs", True)),
                RetryWindow(options.retry_seconds, on_wait=waiting))
    # an asynchronous export with a progress file gets renewed URLs beside it (storage/urlbook)
    path = getattr(progress, "path", None)
    renewal = renewal_path(path) if path and upload.get("renewable") else None
    urls = SignedUrls(upload, renewal, options.retry_seconds, note)
    stream = MultipartStream(urls, int(upload["part_size"]), threads=int(upload.get("threads") or 4), link=link,
                             dest=plan.dest)
    if renewal is not None:
        progress.attach("upload", stream.unsent)
    return stream


def export_vm(options: ExportOptions) -> Dict[str, Any]:
    """Export one VM; returns the result the module and the command report."""
    began = time.monotonic()
    plan = plan_export(options)
    dest = plan.dest
    result: Dict[str, Any] = {"dest": dest, "name": plan.name, "codec": plan.codec.name,
                              "compression_level": plan.codec.level, "threads": plan.threads,
                              "manifest": plan.algorithm, "format": plan.format, "warnings": list(plan.warnings)}
    upload = options.upload or {}
    if plan.remote and not upload:
        raise OutputError("an s3:// destination is written through the controller (the ova_export action, or the "
                          "ovatool command with boto3), which signs the upload", dest)
    if not plan.remote and os.path.lexists(dest) and not options.force and not options.refresh:
        result.update(changed=False, msg=f"{dest} exists; use force to overwrite it")
        return result
    signer = Signer(plan.signing[0], plan.signing[1], plan.signing[2], plan.algorithm) if plan.signing else None

    with ExitStack() as stack:
        disks = open_vm_disks(plan, stack)
        sources = [plan.vmx] + [f for d in disks for f in d.files] + [side.path for side in plan.side_files]
        stamp = fingerprint(sources, plan)
        if plan.remote:
            # the controller decides from the object's metadata whether to export, and sizes the parts
            if upload.get("plan") or options.check_mode:
                result.update(changed=True, fingerprint=stamp, bound_bytes=package_bound(plan, disks, signer),
                              read_bytes=sum(allocated_bytes(disk) for disk in disks),
                              holes=1 + len(disks) + len(plan.side_files), msg=f"would export to {dest}")
                return result
            if upload.get("fingerprint") != stamp:
                raise OutputError("the VM's files changed between the check and the export; run again", dest)
        if not options.check_mode:
            # before any thread of the export starts: they all take the calling thread's priorities
            stack.enter_context(Gentle(options.nice, options.ionice, result["warnings"]))
            stack.enter_context(CancelOnSignal())
            if not plan.remote:
                stack.enter_context(DestLock(dest, result["warnings"].append))
                for leftover in remove_leftovers(dest):
                    result["warnings"].append(f"removed {leftover}, left by an export of {dest} that was killed")
        if not plan.remote and os.path.lexists(dest) and not options.force:
            if read_fingerprint(dest) == stamp:
                result.update(changed=False, current=True, msg=f"{dest} is current: the sources have not changed")
                return result
            result["stale"] = True
        if options.check_mode:
            result.update(changed=True, msg=f"would export {len(disks)} disk(s) to {dest}")
            return result
        if options.slots and options.slots_dir:
            note = getattr(options.progress, "note", None)
            stack.enter_context(ExportSlot(options.slots_dir, options.slots, note))
        mtime = source_mtime(sources)
        read_limit = ReadLimit(options.read_limit_mbps) if options.read_limit_mbps else None
        try:
            if plan.format == "ovf":
                with AtomicFolder(dest) as folder:
                    written = write_package(FolderWriter(folder.temp, plan.algorithm), plan, disks, signer,
                                            options.progress, read_limit=read_limit)
                    folder.commit()
            else:
                with (_open_upload(plan, upload, options) if plan.remote else AtomicOutput(dest)) as out:
                    written = write_package(OvaWriter(out.stream, mtime, plan.algorithm, options.profile), plan,
                                            disks, signer, options.progress, options.profile, read_limit)
                    sent = out.commit()
                if plan.remote:
                    result.update(fingerprint=stamp, parts=sent["parts"], upload_peak_bytes=out.peak_held)
        except OSError as exc:
            # sources raise DiskFormatError/VmxError for their own read errors: this is the output
            raise OutputError(f"writing failed: {describe_os_error(exc)}", dest) from None
        if not plan.remote:
            write_fingerprint(dest, stamp)
    elapsed = time.monotonic() - began
    allocated = sum(d["allocated_bytes"] for d in written["disks"])
    result.update(written)
    result.update(changed=True, elapsed_seconds=round(elapsed, 3),
                  throughput_mbps=round(allocated / MB / elapsed, 1) if elapsed > 0 else 0.0)
    return result


__all__ = ["ExportOptions", "ExportPlan", "export_vm", "plan_export", "resolve_dest", "OvatoolError"]
