# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VMX -> OVA: the whole export, shared by the Ansible module and the command."""
from __future__ import annotations

import hashlib
import os
import time
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Union

from . import manifest, ovf
from .codec import Codec, select_codec
from .descriptor import render_stream_descriptor
from .disk import VirtualDisk, open_disk
from .errors import OutputError, OvatoolError, VmxError, describe_os_error
from .names import safe_name
from .output import AtomicOutput, CancelOnSignal
from .ova import OvaWriter
from .pipeline import allocated_bytes, resolve_threads, run_pipeline
from .stream import StreamVmdkWriter
from .vmx import DiskRef, VirtualMachine, load_vm

ADAPTER_TYPES = ("ide", "buslogic", "lsilogic", "legacyESX")
MB = 1000 * 1000

# A progress callback receives a dict: disk, done_bytes, total_bytes, and so on.
ProgressCallback = Callable[[Dict[str, Any]], None]


@dataclass
class ExportOptions:
    src: str
    dest: str
    force: bool = False
    threads: int = 0
    compression: Union[str, int] = "fast"
    codec: str = "auto"
    manifest: str = "sha256"
    name: Optional[str] = None
    check_mode: bool = False
    progress: Optional[ProgressCallback] = None


def resolve_dest(dest: str, base: str) -> str:
    """``dest`` itself, or ``dest/<base>.ova`` when it is a folder or ends in a slash."""
    dest = os.path.expanduser(dest)
    if dest.endswith(("/", os.sep)) or os.path.isdir(dest):
        if not os.path.isdir(dest):
            raise OutputError("the destination folder does not exist", dest)
        return os.path.join(os.path.abspath(dest), base + ".ova")
    folder = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(folder):
        raise OutputError(f"the destination folder {folder} does not exist", dest)
    return os.path.abspath(dest)


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


def open_vm_disks(vm: VirtualMachine, stack: ExitStack) -> List[VirtualDisk]:
    disks = []
    for ref in vm.disks:
        if not os.path.exists(ref.path):
            raise VmxError(f'disk {ref.address} "{ref.file_name}" is missing ({ref.path})', vm.vmx_path)
        disks.append(stack.enter_context(open_disk(ref.path)))
    return disks


def write_ova(file: BinaryIO, vm: VirtualMachine, name: str, base: str, disks: List[VirtualDisk],
              codec: Codec, threads: int, algorithm: str, mtime: int,
              progress: Optional[ProgressCallback] = None) -> Dict[str, Any]:
    """Write the whole OVA to ``file`` (seekable) in one pass; return what was written."""
    hrefs = [f"{base}-disk{i + 1}.vmdk" for i in range(len(disks))]
    placeholder = 10 ** 20 - 1
    planned = [ovf.OvfDisk(ref.controller, ref.unit, href, f"file{i + 1}", f"vmdisk{i + 1}",
                           disk.capacity, placeholder, placeholder)
               for i, (ref, disk, href) in enumerate(zip(vm.disks, disks, hrefs))]
    reserved = len(ovf.render(ovf.build_envelope(vm, name, planned)))
    ovf_name, mf_name = base + ".ovf", base + ".mf"

    archive = OvaWriter(file, mtime, algorithm)
    ovf_slot = archive.reserve(ovf_name, reserved)
    mf_slot = archive.reserve(mf_name, manifest.size_of(algorithm, [ovf_name] + hrefs))

    totals = [allocated_bytes(disk) for disk in disks] if progress else [0] * len(disks)
    done = 0
    results = []
    for index, (ref, disk, href) in enumerate(zip(vm.disks, disks, hrefs)):
        cid, long_id = _content_ids(f"{name}|{href}|{disk.descriptor.cid:08x}|{disk.capacity}")
        descriptor = render_stream_descriptor(
            href, disk.capacity // 512, cid, long_id, _adapter_type(vm, ref, disk), vm.hardware_version,
            disk.descriptor.ddb.get("ddb.toolsVersion"), disk.descriptor.ddb.get("ddb.toolsInstallType"))
        member = archive.member(href)
        writer = StreamVmdkWriter(member.write, disk.capacity // 512, descriptor)

        disk_done = 0

        def on_batch(length: int, _href: str = href, _index: int = index) -> None:
            nonlocal done, disk_done
            done += length
            disk_done += length
            if progress is not None:
                progress({"disk": _href, "disk_index": _index, "disks": len(disks), "disk_done": disk_done,
                          "disk_total": totals[_index], "done_bytes": done, "total_bytes": sum(totals)})

        stats = run_pipeline(disk, writer, codec, threads, on_batch if progress else None)
        member.close()
        planned[index].populated = stats.data_bytes
        planned[index].file_size = member.size
        results.append({
            "source": disk.path, "href": href, "controller": ref.controller, "unit": ref.unit,
            "create_type": disk.create_type, "capacity_bytes": disk.capacity,
            "allocated_bytes": stats.allocated_bytes, "populated_bytes": stats.data_bytes,
            "written_bytes": member.size, "seconds": round(stats.seconds, 3),
        })

    ovf_digest = archive.fill(ovf_slot, ovf.render(ovf.build_envelope(vm, name, planned), pad_to=reserved))
    digests = [(ovf_name, ovf_digest)] + list(archive.digests)
    archive.fill(mf_slot, manifest.render(algorithm, digests))
    archive.close()
    members = [{"name": n, "size": archive.sizes[n], "digest": d} for n, d in digests]
    members.insert(1, {"name": mf_name, "size": archive.sizes[mf_name], "digest": None})
    return {"disks": results, "members": members, "digests": dict(digests), "size": archive.position}


def export_vm(options: ExportOptions) -> Dict[str, Any]:
    """Export one VM; returns the result the module and the command report."""
    began = time.monotonic()
    src = os.path.abspath(os.path.expanduser(options.src))
    vm = load_vm(src)
    if vm.encrypted:
        raise VmxError("the VM is encrypted (encryption.keySafe / vmx.encryptionType); "
                       "remove the encryption in VMware before exporting it", src)
    name = options.name or vm.name
    base = safe_name(name, fallback=os.path.splitext(os.path.basename(src))[0])
    dest = resolve_dest(options.dest, base)
    codec = select_codec(options.codec, options.compression)
    algorithm = manifest.check_algorithm(options.manifest)
    threads = resolve_threads(options.threads)
    result: Dict[str, Any] = {"dest": dest, "name": name, "codec": codec.name, "compression_level": codec.level,
                              "threads": threads, "manifest": algorithm, "format": "ova",
                              "warnings": list(vm.warnings)}
    if os.path.lexists(dest) and not options.force:
        result.update(changed=False, msg=f"{dest} exists; use force to overwrite it")
        return result

    with ExitStack() as stack:
        disks = open_vm_disks(vm, stack)
        if options.check_mode:
            result.update(changed=True, msg=f"would export {len(disks)} disk(s) to {dest}")
            return result
        mtime = source_mtime([src] + [f for d in disks for f in d.files])
        try:
            with CancelOnSignal(), AtomicOutput(dest) as out:
                written = write_ova(out.stream, vm, name, base, disks, codec, threads, algorithm, mtime,
                                    options.progress)
                out.commit()
        except OSError as exc:
            where = exc.filename or dest
            verb = "reading" if exc.filename and exc.filename != dest else "writing"
            raise OutputError(f"{verb} failed: {describe_os_error(exc)}", where) from None
    elapsed = time.monotonic() - began
    allocated = sum(d["allocated_bytes"] for d in written["disks"])
    result.update(written)
    result.update(changed=True, elapsed_seconds=round(elapsed, 3),
                  throughput_mbps=round(allocated / MB / elapsed, 1) if elapsed > 0 else 0.0)
    return result


__all__ = ["ExportOptions", "export_vm", "resolve_dest", "OvatoolError"]
