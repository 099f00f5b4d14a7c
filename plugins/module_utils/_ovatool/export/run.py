# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VMX -> OVA: the whole export, shared by the Ansible module and the command."""
from __future__ import annotations

import hashlib
import json
import os
import time
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ..formats import manifest, ovf
from .codec import Codec, select_codec
from ..formats.descriptor import render_stream_descriptor
from ..formats.disk import VirtualDisk, open_disk
from ..errors import OutputError, OvatoolError, VmxError, describe_os_error
from ..fileio import replace_small_file
from ..names import safe_name
from .folder import FolderWriter
from ..output import AtomicFolder, AtomicOutput, CancelOnSignal, DestLock, remove_leftovers
from ..formats.ova import OvaWriter
from .pipeline import allocated_bytes, resolve_threads, run_pipeline
from ..formats.sign import Signer
from ..formats.stream import StreamVmdkWriter
from ..formats.vmx import DiskRef, VirtualMachine, load_vm, resolve_path

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
    format: str = "ova"
    max_hardware_version: Optional[int] = None
    export_flags: Sequence[str] = ()
    private_key: Optional[str] = None
    private_key_passphrase: Optional[str] = None
    certificate: Optional[str] = None
    include_images: bool = False
    refresh: bool = False
    check_mode: bool = False
    progress: Optional[ProgressCallback] = None


def resolve_dest(dest: str, base: str, fmt: str = "ova") -> str:
    """Where the package goes.

    ova: ``dest`` itself, or ``dest/<base>.ova`` when it is a folder or ends in a slash.
    ovf: a folder holding the files; ``dest/<base>`` when ``dest`` ends in a slash, else ``dest``
    itself (the package folder, created when complete).
    """
    dest = os.path.expanduser(dest)
    if fmt == "ovf" and not dest.endswith(("/", os.sep)):
        folder = os.path.dirname(os.path.abspath(dest))
        if not os.path.isdir(folder):
            raise OutputError(f"the destination folder {folder} does not exist", dest)
        return os.path.abspath(dest)
    if dest.endswith(("/", os.sep)) or os.path.isdir(dest):
        if not os.path.isdir(dest):
            raise OutputError("the destination folder does not exist", dest)
        return os.path.join(os.path.abspath(dest), base + (".ova" if fmt == "ova" else ""))
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


def _copy_member(container, name: str, path: str) -> int:
    """Stream a side file (NVRAM, ISO) into the package; returns its size."""
    member = container.member(name)
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                member.write(block)
    except OSError as exc:
        raise VmxError(f"cannot read {path}: {exc.strerror}", path) from None
    member.close()
    return member.size


def write_package(container, vm: VirtualMachine, name: str, base: str, disks: List[VirtualDisk],
                  codec: Codec, threads: int, algorithm: str, ovf_options: ovf.OvfOptions,
                  side: Sequence[Tuple[str, str, Optional[int]]] = (), signer: Optional[Signer] = None,
                  progress: Optional[ProgressCallback] = None) -> Dict[str, Any]:
    """Write the .ovf, .mf, optional .cert, the disks and the NVRAM into ``container`` in one pass.

    ``container`` is an OvaWriter (tar) or a FolderWriter (``format: ovf``); both reserve the head
    members and fill them at the end, once every size and digest is known.
    """
    hrefs = [f"{base}-disk{i + 1}.vmdk" for i in range(len(disks))]
    placeholder = 10 ** 20 - 1
    planned = [ovf.OvfDisk(ref.controller, ref.unit, href, f"file{i + 1}", f"vmdisk{i + 1}",
                           disk.capacity, placeholder, placeholder)
               for i, (ref, disk, href) in enumerate(zip(vm.disks, disks, hrefs))]
    # side files (ISOs of CD-ROMs, then the NVRAM): (href, file id, source path, size)
    side_files = []
    for number, (path, extension, cdrom) in enumerate(side, 1):
        file_id = f"file{len(disks) + number}"
        side_files.append([f"{base}-file{number}.{extension}", file_id, path, placeholder])
        if cdrom is None:
            ovf_options.nvram_file_id = file_id
        else:
            ovf_options.cdrom_files[cdrom] = file_id

    def envelope() -> bytes:
        extra = [(href, file_id, size) for href, file_id, _path, size in side_files]
        return ovf.build_envelope(vm, name, planned, extra, ovf_options)

    reserved = len(ovf.render(envelope()))
    ovf_name, mf_name, cert_name = base + ".ovf", base + ".mf", base + ".cert"
    listed = [ovf_name] + hrefs + [entry[0] for entry in side_files]
    ovf_slot = container.reserve(ovf_name, reserved)
    mf_slot = container.reserve(mf_name, manifest.size_of(algorithm, listed))
    cert_slot = container.reserve(cert_name, len(signer.cert_bytes(mf_name, b"size probe"))) if signer else None

    totals = [allocated_bytes(disk) for disk in disks] if progress else [0] * len(disks)
    done = 0
    results = []
    for index, (ref, disk, href) in enumerate(zip(vm.disks, disks, hrefs)):
        cid, long_id = _content_ids(f"{name}|{href}|{disk.descriptor.cid:08x}|{disk.capacity}")
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
    for entry in side_files:
        entry[3] = _copy_member(container, entry[0], entry[2])

    ovf_digest = container.fill(ovf_slot, ovf.render(envelope(), pad_to=reserved))
    digests = [(ovf_name, ovf_digest)] + list(container.digests)
    manifest_bytes = manifest.render(algorithm, digests)
    container.fill(mf_slot, manifest_bytes)
    if signer is not None and cert_slot is not None:
        container.fill(cert_slot, signer.cert_bytes(mf_name, manifest_bytes))
    container.close()
    members = [{"name": n, "size": container.sizes[n], "digest": d} for n, d in digests]
    members.insert(1, {"name": mf_name, "size": container.sizes[mf_name], "digest": None})
    if signer is not None:
        members.insert(2, {"name": cert_name, "size": container.sizes[cert_name], "digest": None})
    return {"disks": results, "members": members, "digests": dict(digests), "size": container.position,
            "signed": signer is not None}


def fingerprint(sources: List[str], options: ExportOptions, name: str) -> str:
    """What the package was made from: every source file's size and mtime, and the options that shape it."""
    files = []
    for path in sources:
        try:
            info = os.stat(path)
            files.append([os.path.abspath(path), info.st_size, info.st_mtime_ns])
        except OSError:
            files.append([os.path.abspath(path), None, None])
    shape = {"name": name, "format": options.format, "manifest": options.manifest, "flags": sorted(options.export_flags),
             "max_hardware_version": options.max_hardware_version, "include_images": options.include_images,
             "signed": bool(options.private_key)}
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


def side_files(vm: VirtualMachine, include_images: bool, warnings: List[str]) -> List[Tuple[str, str, Optional[int]]]:
    """(path, extension, CD-ROM index or None) of the files that travel beside the disks."""
    files: List[Tuple[str, str, Optional[int]]] = []
    if include_images:
        for number, cdrom in enumerate(vm.cdroms):
            if cdrom.device_type != "cdrom-image" or not cdrom.file_name:
                continue
            path = resolve_path(vm.folder, cdrom.file_name)
            if os.path.isfile(path):
                files.append((path, "iso", number))
            else:
                warnings.append(f"{cdrom.controller}:{cdrom.unit}: the ISO {cdrom.file_name} is not on this host; "
                                "the CD-ROM is exported empty")
    if vm.nvram:
        path = os.path.join(vm.folder, vm.nvram.replace("\\", "/"))
        if os.path.isfile(path):
            files.append((path, "nvram", None))
    return files


def export_vm(options: ExportOptions) -> Dict[str, Any]:
    """Export one VM; returns the result the module and the command report."""
    began = time.monotonic()
    src = os.path.abspath(os.path.expanduser(options.src))
    vm = load_vm(src)
    if vm.encrypted:
        raise VmxError("the VM is encrypted (encryption.keySafe / vmx.encryptionType); "
                       "remove the encryption in VMware before exporting it", src)
    fmt = (options.format or "ova").lower()
    if fmt not in ("ova", "ovf"):
        raise OvatoolError(f'format "{options.format}" is not ova or ovf')
    flags = tuple(sorted(set(f.strip().lower() for f in options.export_flags or ())))
    unknown = [f for f in flags if f not in ovf.EXPORT_FLAGS]
    if unknown:
        raise OvatoolError(f"unknown export flag(s) {', '.join(unknown)}: use {', '.join(ovf.EXPORT_FLAGS)}")
    if bool(options.private_key) != bool(options.certificate):
        raise OvatoolError("signing needs both private_key and certificate")
    name = options.name or vm.name
    base = safe_name(name, fallback=os.path.splitext(os.path.basename(src))[0])
    dest = resolve_dest(options.dest, base, fmt)
    codec = select_codec(options.codec, options.compression)
    algorithm = manifest.check_algorithm(options.manifest)
    threads = resolve_threads(options.threads)
    result: Dict[str, Any] = {"dest": dest, "name": name, "codec": codec.name, "compression_level": codec.level,
                              "threads": threads, "manifest": algorithm, "format": fmt,
                              "warnings": list(vm.warnings)}
    if os.path.lexists(dest) and not options.force and not options.refresh:
        result.update(changed=False, msg=f"{dest} exists; use force to overwrite it")
        return result
    signer = Signer(options.private_key, options.certificate, options.private_key_passphrase, algorithm) \
        if options.private_key and options.certificate else None
    ovf_options = ovf.OvfOptions(hardware_version=options.max_hardware_version, flags=flags)

    with ExitStack() as stack:
        disks = open_vm_disks(vm, stack)
        side = side_files(vm, options.include_images, result["warnings"])
        sources = [src] + [f for d in disks for f in d.files] + [entry[0] for entry in side]
        stamp = fingerprint(sources, options, name)
        if not options.check_mode:
            stack.enter_context(CancelOnSignal())
            stack.enter_context(DestLock(dest, result["warnings"].append))
            for leftover in remove_leftovers(dest):
                result["warnings"].append(f"removed {leftover}, left by an export of {dest} that was killed")
        if os.path.lexists(dest) and not options.force:
            if read_fingerprint(dest) == stamp:
                result.update(changed=False, current=True, msg=f"{dest} is current: the sources have not changed")
                return result
            result["stale"] = True
        if options.check_mode:
            result.update(changed=True, msg=f"would export {len(disks)} disk(s) to {dest}")
            return result
        mtime = source_mtime(sources)
        package = (disks, codec, threads, algorithm, ovf_options, side, signer, options.progress)
        try:
            if fmt == "ova":
                with AtomicOutput(dest) as out:
                    written = write_package(OvaWriter(out.stream, mtime, algorithm), vm, name, base, *package)
                    out.commit()
            else:
                with AtomicFolder(dest) as folder:
                    written = write_package(FolderWriter(folder.temp, algorithm), vm, name, base, *package)
                    folder.commit()
        except OSError as exc:
            # sources raise DiskFormatError/VmxError for their own read errors: this is the output
            raise OutputError(f"writing failed: {describe_os_error(exc)}", dest) from None
        write_fingerprint(dest, stamp)
    elapsed = time.monotonic() - began
    allocated = sum(d["allocated_bytes"] for d in written["disks"])
    result.update(written)
    result.update(changed=True, elapsed_seconds=round(elapsed, 3),
                  throughput_mbps=round(allocated / MB / elapsed, 1) if elapsed > 0 else 0.0)
    return result


__all__ = ["ExportOptions", "export_vm", "resolve_dest", "OvatoolError"]
