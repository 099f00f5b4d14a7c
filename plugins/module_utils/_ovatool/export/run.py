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
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..errors import OutputError, OvatoolError, SnapshotError, VmxError, describe_os_error
from ..formats import manifest, ovf
from ..formats.appliance_write import apply_appliance
from ..formats.descriptor import render_stream_descriptor
from ..formats.disk import VirtualDisk, open_disk
from ..formats.ova import OvaWriter
from ..formats.sign import Signer
from ..formats.stream import StreamVmdkWriter
from ..formats.vmdk import GRAIN_BYTES, GTES_PER_GT, SECTOR
from ..formats.vmsd import read_vmsd
from ..formats.vmx import DiskRef, VirtualMachine
from ..host.slots import ExportSlot
from ..host.snapshot import SnapshotLock
from ..output import CancelOnSignal
from ..protocols import BatchWriter, OutputSet, PackageWriter
from .folder import FolderWriter
from .gentle import Gentle, ReadLimit
from .images import ImageSet, image_objects
from .outputs import open_outputs
from .pipeline import PipelineSettings, allocated_bytes, run_pipeline
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
    """The most bytes the OVA of ``plan`` can take (a metadata walk only): what sizes an object's parts.

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


@dataclass
class WriteSettings:
    """What shapes the writing of one export besides its plan: signing, watching, limiting, the images."""

    signer: Optional[Signer] = None
    progress: Optional[ProgressCallback] = None
    profile: Optional[Profile] = None
    read_limit: Optional[ReadLimit] = None
    images: List[List[BatchWriter]] = field(default_factory=list)  # per disk: its image writers (formats/)


def _write_disks(container: Optional[PackageWriter], plan: ExportPlan, disks: List[VirtualDisk],
                 settings: WriteSettings) -> List[Dict[str, Any]]:
    """Every disk, each in one read: into the package (a streamOptimized member) and into each of its images."""
    vm, progress = plan.vm, settings.progress
    totals = [allocated_bytes(disk) for disk in disks] if progress else [0] * len(disks)
    done = 0
    results = []
    for index, (target, disk) in enumerate(zip(plan.disks, disks)):
        ref, href = target.ref, target.href
        writers: List[BatchWriter] = list(settings.images[index]) if settings.images else []
        member = None
        if container is not None:
            cid, long_id = _content_ids(f"{plan.name}|{href}|{disk.descriptor.cid:08x}|{disk.capacity}")
            descriptor = render_stream_descriptor(
                href, disk.capacity // 512, (cid, long_id), _adapter_type(vm, ref, disk), vm.hardware_version,
                (disk.descriptor.ddb.get("ddb.toolsVersion"), disk.descriptor.ddb.get("ddb.toolsInstallType")))
            member = container.member(href)
            writers.insert(0, StreamVmdkWriter(member.write, disk.capacity // 512, descriptor))
        disk_done = 0

        def on_batch(length: int, _href: str = href, _index: int = index) -> None:
            nonlocal done, disk_done
            done += length
            disk_done += length
            if progress is not None:
                progress({"disk": _href, "disk_index": _index, "disks": len(disks), "disk_done": disk_done,
                          "disk_total": totals[_index], "done_bytes": done, "total_bytes": sum(totals)})

        codec = plan.codec if any(writer.compressed for writer in writers) else None  # raw, VHD, VHDX: none
        stats = run_pipeline(disk, writers, codec, PipelineSettings(
            plan.threads, on_batch if progress else None, profile=settings.profile, read_limit=settings.read_limit))
        if member is not None:
            member.close()
        results.append({
            "source": disk.path, "href": href, "controller": ref.controller, "unit": ref.unit,
            "create_type": disk.create_type, "capacity_bytes": disk.capacity,
            "allocated_bytes": stats.allocated_bytes, "populated_bytes": stats.data_bytes,
            "written_bytes": member.size if member is not None else 0, "seconds": round(stats.seconds, 3),
        })
    return results


def write_package(container: PackageWriter, plan: ExportPlan, disks: List[VirtualDisk],
                  settings: WriteSettings) -> Dict[str, Any]:
    """Write the .ovf, .mf, optional .cert, the disks and the side files into ``container`` in one pass.

    ``container`` is an OvaWriter (tar) or a FolderWriter (``format: ovf``); both reserve the head
    members and fill them at the end, once every size and digest is known.
    """
    signer = settings.signer
    planned = _placeholder_disks(plan, disks)
    side_sizes = {side.href: PLACEHOLDER for side in plan.side_files}

    reserved, mf_size, cert_size = _head_sizes(plan, planned, side_sizes, signer)
    ovf_slot = container.reserve(plan.ovf_name, reserved)
    mf_slot = container.reserve(plan.mf_name, mf_size)
    cert_slot = container.reserve(plan.cert_name, cert_size) if signer else None

    results = _write_disks(container, plan, disks, settings)
    for index, result in enumerate(results):
        planned[index].populated = result["populated_bytes"]
        planned[index].file_size = result["written_bytes"]
    for side in plan.side_files:
        side_sizes[side.href] = _copy_member(container, side.href, side.path, settings.read_limit)

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
    if plan.images:  # only then: packages exported before images existed stay current
        shape["images"] = list(plan.images)
    return hashlib.sha256(json.dumps([files, shape], sort_keys=True).encode()).hexdigest()


def _write_outputs(plan: ExportPlan, disks: List[VirtualDisk], settings: WriteSettings, outputs: OutputSet,
                   mtime: int) -> Dict[str, Any]:
    """Write the package and the images, in one pass over the disks, and commit them together; returns what
    was written."""
    with ExitStack() as stack:
        images = None
        if plan.images:
            images = ImageSet(plan, [disk.capacity for disk in disks], mtime, stack, outputs.image)
            settings.images = images.writers
        package: Any = None
        if plan.format == "ovf":
            package = stack.enter_context(outputs.package())
            written = write_package(FolderWriter(package.temp, plan.algorithm), plan, disks, settings)
        elif plan.format == "none":
            written = {"disks": _write_disks(None, plan, disks, settings), "members": [], "size": 0}
        else:
            package = stack.enter_context(outputs.package())
            written = write_package(OvaWriter(package.stream, mtime, plan.algorithm, settings.profile), plan, disks,
                                    settings)
        written.update(outputs.commit(package, images, plan.threads))
    return written


def _sources(plan: ExportPlan, disks: List[VirtualDisk]) -> List[str]:
    """Every file the export reads: the .vmx, each disk's files, the side files."""
    return [plan.vmx] + [f for d in disks for f in d.files] + [side.path for side in plan.side_files]


def _result(plan: ExportPlan) -> Dict[str, Any]:
    """What every answer about ``plan`` starts with."""
    return {"dest": plan.dest, "name": plan.name, "codec": plan.codec.name, "compression_level": plan.codec.level,
            "threads": plan.threads, "manifest": plan.algorithm, "format": plan.format,
            "warnings": list(plan.warnings)}


def plan_only(options: ExportOptions) -> Dict[str, Any]:
    """What an export of ``options`` would write, from the metadata alone (no disk is read): the sources'
    fingerprint, a bound on the package's size and each image's, and the bytes it would read. Whoever prepares
    the destination ahead of the export (the controller, for an object store) decides and sizes by it."""
    plan = plan_export(options)
    result = _result(plan)
    with ExitStack() as stack:
        disks = open_vm_disks(plan, stack)
        result.update(changed=True, fingerprint=fingerprint(_sources(plan, disks), plan),
                      bound_bytes=package_bound(plan, disks, _signer(plan)),
                      read_bytes=sum(allocated_bytes(disk) for disk in disks),
                      holes=1 + len(disks) + len(plan.side_files), msg=f"would export to {plan.dest}",
                      objects=image_objects(plan, [disk.capacity for disk in disks]))
        if plan.snapshot is not None:
            result["snapshot"] = plan.snapshot.as_dict(plan.vm.folder)
    return result


def _signer(plan: ExportPlan) -> Optional[Signer]:
    return Signer(plan.signing[0], plan.signing[1], plan.signing[2], plan.algorithm) if plan.signing else None


def export_vm(options: ExportOptions) -> Dict[str, Any]:
    """Export one VM; returns the result the module and the command report."""
    began = time.monotonic()
    plan = plan_export(options)
    dest = plan.dest
    outputs = open_outputs(plan, options)
    result = dict(_result(plan), files=outputs.paths())
    present = outputs.existing()
    if present and not options.force and not options.refresh:
        result.update(changed=False, msg=f"{present[-1]} exists; use force to overwrite it")
        return result
    signer = _signer(plan)

    with ExitStack() as stack:
        if plan.snapshot is not None:
            # the snapshot is not removed while we read its files (host/snapshot), and is still the one planned
            stack.enter_context(SnapshotLock(plan.vmx, plan.snapshot.name))
            if plan.snapshot not in read_vmsd(plan.vmx).named(plan.snapshot.name):
                raise SnapshotError(f'snapshot "{plan.snapshot.name}" changed or was removed as the export began',
                                    plan.vmx)
            result["snapshot"] = plan.snapshot.as_dict(plan.vm.folder)
        disks = open_vm_disks(plan, stack)
        sources = _sources(plan, disks)
        stamp = fingerprint(sources, plan)
        if not options.check_mode:
            outputs.expect(stamp)
            # before any thread of the export starts: they all take the calling thread's priorities
            stack.enter_context(Gentle(options.nice, options.ionice, result["warnings"]))
            stack.enter_context(CancelOnSignal())
            outputs.guard(stack, result["warnings"])
        if outputs.existing() and not options.force:
            if outputs.current(stamp):
                result.update(changed=False, current=True, msg=f"{dest} is current: the sources have not changed")
                return result
            result["stale"] = True
        if options.check_mode:
            images = f" and {len(disks) * len(plan.images)} image(s) beside it" if plan.images else ""
            result.update(changed=True, msg=f"would export {len(disks)} disk(s) to {dest}{images}")
            return result
        if options.slots and options.slots_dir:
            note = getattr(options.progress, "note", None)
            stack.enter_context(ExportSlot(options.slots_dir, options.slots, note))
        read_limit = ReadLimit(options.read_limit_mbps) if options.read_limit_mbps else None
        settings = WriteSettings(signer, options.progress, options.profile, read_limit)
        try:
            written = _write_outputs(plan, disks, settings, outputs, source_mtime(sources))
        except OSError as exc:
            # sources raise DiskFormatError/VmxError for their own read errors: this is the output
            raise OutputError(f"writing failed: {describe_os_error(exc)}", dest) from None
        written.update(outputs.record(stamp))
    elapsed = time.monotonic() - began
    allocated = sum(d["allocated_bytes"] for d in written["disks"])
    result.update(written)
    result.update(changed=True, elapsed_seconds=round(elapsed, 3),
                  throughput_mbps=round(allocated / MB / elapsed, 1) if elapsed > 0 else 0.0)
    return result


__all__ = ["ExportOptions", "ExportPlan", "export_vm", "plan_export", "plan_only", "resolve_dest", "OvatoolError"]
