# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan of one export: what is read, what is written, with which options.

Built once, from the VMX and the caller's options, before any disk is opened; immutable afterwards. Everything
downstream (the package writer, the fingerprint, the result) reads its facts from here instead of passing
loose values around, so that no later step can rename the appliance or re-derive a member name differently.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

from .. import defaults

from ..errors import OutputError, OvatoolError, VmxError
from ..formats import manifest, ovf
from ..formats.appliance import Appliance, check_networks, merge_specs, parse_appliance
from ..formats.vmsd import Snapshot, snapshot_disks
from ..formats.vmx import DiskRef, VirtualMachine, load_vm, resolve_path
from ..names import safe_name
from ..storage import objects
from .codec import QCOW2_WINDOW_BITS, Codec, select_codec
from .gentle import IONICE_CLASSES
from .pipeline import resolve_threads
from .profile import Profile

FORMATS = ("ova", "ovf", "none")  # none: images only, no package
IMAGE_FORMATS = ("qcow2", "vhdx", "vhd", "raw")  # each a file in formats/, written in the package's pass
SUMS_SUFFIX = ".SHA256SUMS"

# A progress callback receives a dict: disk, done_bytes, total_bytes, and so on.
ProgressCallback = Callable[[Dict[str, Any]], None]


@dataclass
class ExportOptions:
    """What the caller asks for (the module's and the command's options)."""

    src: str
    dest: str
    force: bool = False
    threads: int = defaults.THREADS
    compression: Union[str, int] = defaults.COMPRESSION
    codec: str = defaults.CODEC
    manifest: str = defaults.MANIFEST
    name: Optional[str] = None
    format: str = defaults.FORMAT
    max_hardware_version: Optional[int] = None
    export_flags: Sequence[str] = ()
    private_key: Optional[str] = None
    private_key_passphrase: Optional[str] = None
    certificate: Optional[str] = None
    include_images: bool = False
    refresh: bool = False
    check_mode: bool = False
    progress: Optional[ProgressCallback] = None
    appliance: Optional[Dict[str, Any]] = None  # product, EULA, properties, deployment options... (formats/appliance)
    appliances: Optional[Dict[str, Dict[str, Any]]] = None  # per VM name, merged over ``appliance`` key by key
    nice: int = defaults.NICE  # CPU niceness added for the export's threads
    ionice: str = defaults.IONICE  # I/O class of the export's threads: idle, best-effort, none
    read_limit_mbps: float = defaults.READ_LIMIT_MBPS  # the most MB/s read from the sources, 0 = no limit
    slots: int = 0  # at most this many exports at once on the host (0: no limit), counted in slots_dir
    slots_dir: Optional[str] = None
    profile: Optional[Profile] = None  # CPU seconds per stage and thread (the benchmark's --profile)
    # an object-store dest: the presigned multipart upload the controller started, as the ova_export module's
    # ``upload`` option carries it (storage/objects reads it)
    upload: Optional[Dict[str, Any]] = None
    retry_seconds: float = defaults.RETRY_SECONDS  # an upload retries until the store has not answered this long
    images: Sequence[str] = ()  # image formats written beside the package, from the same read (IMAGE_FORMATS)
    snapshot: Optional[str] = None  # read the disks as this snapshot (.vmsd displayName) froze them

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **more: Any) -> "ExportOptions":
        """The options from the ova_export module's parameters (the command names its own the same): each
        parameter that is a field, ``None`` standing for the field's default; ``more`` sets the rest
        (check_mode, progress, profile)."""
        given = {f.name: params[f.name] for f in fields(cls) if params.get(f.name) is not None}
        given.update(more)
        return cls(**given)


@dataclass(frozen=True)
class PlannedDisk:
    """One virtual disk and the member it becomes."""

    ref: DiskRef
    href: str  # member name, e.g. App-disk1.vmdk
    file_id: str  # ovf:id in References
    disk_id: str  # ovf:diskId in DiskSection


@dataclass(frozen=True)
class SideFile:
    """A file that travels beside the disks unchanged: a CD-ROM's ISO, or the NVRAM."""

    path: str
    href: str
    file_id: str
    cdrom: Optional[int]  # index into vm.cdroms, None for the NVRAM


@dataclass(frozen=True)
class ExportPlan:
    vmx: str  # absolute path of the .vmx
    vm: VirtualMachine
    name: str  # the appliance's name: <ovf:Name>, as the VMX (or the ``name`` option) says
    base: str  # the file-name stem of every member, from ``name`` made safe
    dest: str  # the package: a .ova file, the folder of an OVF package, an s3:// URL; format none: the checksums
    format: str  # ova | ovf | none
    codec: Codec
    threads: int
    algorithm: str  # manifest digest
    flags: Tuple[str, ...]
    max_hardware_version: Optional[int]
    include_images: bool
    signing: Optional[Tuple[str, str, Optional[str]]]  # private key, certificate, passphrase
    disks: Tuple[PlannedDisk, ...]
    side_files: Tuple[SideFile, ...]
    appliance: Appliance = field(default_factory=Appliance)
    warnings: Tuple[str, ...] = field(default=())
    images: Tuple[str, ...] = field(default=())
    snapshot: Optional[Snapshot] = None  # the disks are the files this snapshot froze, not the VM's current ones

    @property
    def package(self) -> bool:
        """A package (OVA or OVF folder) is written; format none writes only images."""
        return self.format != "none"

    @property
    def folder(self) -> str:
        """Where the images and their checksums go: beside the package."""
        return os.path.dirname(self.dest)

    def image_path(self, index: int, image: str) -> str:
        """``<name>-disk<N>.<format>`` for the disk at ``index`` (0-based)."""
        return os.path.join(self.folder, f"{self.base}-disk{index + 1}.{image}")

    @property
    def sums_path(self) -> Optional[str]:
        """The SHA256SUMS of everything the export writes, when it writes images."""
        return os.path.join(self.folder, self.base + SUMS_SUFFIX) if self.images else None

    def outputs(self) -> Tuple[str, ...]:
        """Every path the export leaves: images, their checksums, the package (the lock and the fingerprint are
        the package's, or the checksums' for format none)."""
        images = tuple(self.image_path(i, image) for i in range(len(self.disks)) for image in self.images)
        return images + ((self.sums_path,) if self.sums_path and self.package else ()) + (self.dest,)

    @property
    def ovf_name(self) -> str:
        return self.base + ".ovf"

    @property
    def mf_name(self) -> str:
        return self.base + ".mf"

    @property
    def cert_name(self) -> str:
        return self.base + ".cert"

    def ovf_options(self) -> ovf.OvfOptions:
        options = ovf.OvfOptions(hardware_version=self.max_hardware_version, flags=self.flags)
        for side in self.side_files:
            if side.cdrom is None:
                options.nvram_file_id = side.file_id
            else:
                options.cdrom_files[side.cdrom] = side.file_id
        return options


def resolve_dest(dest: str, base: str, fmt: str = "ova") -> str:
    """Where the package goes.

    ova: ``dest`` itself, or ``dest/<base>.ova`` when it is a folder or ends in a slash (an ``s3://`` URL too).
    ovf: a folder holding the files; ``dest/<base>`` when ``dest`` ends in a slash, else ``dest``
    itself (the package folder, created when complete).
    """
    if fmt == "none":  # images only: a folder gets them, and <base>.SHA256SUMS stands for the set
        folder = os.path.expanduser(dest)
        if objects.handles(dest) or not os.path.isdir(folder):
            raise OutputError("format none writes images into a folder: dest must be an existing folder", dest)
        return os.path.join(os.path.abspath(folder), base + SUMS_SUFFIX)
    if objects.handles(dest):
        if fmt != "ova":
            raise OutputError("an s3:// destination takes an OVA (format: ova)", dest)
        return dest + base + ".ova" if dest.endswith("/") else dest
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


def _side_files(vm: VirtualMachine, base: str, first_id: int, include_images: bool,
                warnings: list) -> Tuple[SideFile, ...]:
    """The ISOs of CD-ROMs (with ``include_images``), then the NVRAM, in member order."""
    found = []
    if include_images:
        for number, cdrom in enumerate(vm.cdroms):
            if cdrom.device_type != "cdrom-image" or not cdrom.file_name:
                continue
            path = resolve_path(vm.folder, cdrom.file_name)
            if os.path.isfile(path):
                found.append((path, "iso", number))
            else:
                warnings.append(f"{cdrom.controller}:{cdrom.unit}: the ISO {cdrom.file_name} is not on this host; "
                                "the CD-ROM is exported empty")
    if vm.nvram:
        path = os.path.join(vm.folder, vm.nvram.replace("\\", "/"))
        if os.path.isfile(path):
            found.append((path, "nvram", None))
    return tuple(SideFile(path, f"{base}-file{number}.{extension}", f"file{first_id + number - 1}", cdrom)
                 for number, (path, extension, cdrom) in enumerate(found, 1))


def check_images(images: Sequence[str], fmt: str, dest: str) -> Tuple[str, ...]:
    """The ``images`` option, checked before any disk is read."""
    wanted = tuple(dict.fromkeys(str(image).strip().lower() for image in images or ()))
    unknown = [image for image in wanted if image not in IMAGE_FORMATS]
    if unknown:
        raise OvatoolError(f'images: {", ".join(unknown)} is not an image format; use {", ".join(IMAGE_FORMATS)}')
    if fmt == "none" and not wanted:
        raise OvatoolError(f'format none writes no package, only images: give images ({", ".join(IMAGE_FORMATS)})')
    return wanted


def plan_export(options: ExportOptions) -> ExportPlan:
    """Check the options against the VMX and decide every name and path; reads no disk."""
    src = os.path.abspath(os.path.expanduser(options.src))
    vm = load_vm(src)
    if vm.encrypted:
        raise VmxError("the VM is encrypted (encryption.keySafe / vmx.encryptionType); "
                       "remove the encryption in VMware before exporting it", src)
    fmt = (options.format or "ova").lower()
    if fmt not in FORMATS:
        raise OvatoolError(f'format "{options.format}" is not {", ".join(FORMATS)}')
    images = check_images(options.images, fmt, options.dest)
    flags = tuple(sorted(set(f.strip().lower() for f in options.export_flags or ())))
    unknown = [f for f in flags if f not in ovf.EXPORT_FLAGS]
    if unknown:
        raise OvatoolError(f"unknown export flag(s) {', '.join(unknown)}: use {', '.join(ovf.EXPORT_FLAGS)}")
    if bool(options.private_key) != bool(options.certificate):
        raise OvatoolError("signing needs both private_key and certificate")
    if options.ionice not in IONICE_CLASSES or not 0 <= options.nice <= 19 or options.read_limit_mbps < 0:
        raise OvatoolError(f"nice must be 0..19 (not {options.nice}), ionice one of {', '.join(IONICE_CLASSES)} "
                           f"(not {options.ionice!r}), read_limit_mbps 0 or more (not {options.read_limit_mbps})")
    own = (options.appliances or {}).get(vm.name)
    appliance = parse_appliance(merge_specs(options.appliance, own) if options.appliance or own else None)
    check_networks(appliance, [f"ethernet{nic.index}" for nic in vm.nics], [nic.network for nic in vm.nics])
    if appliance.annotation is None and vm.get("annotation").strip():  # the VM's notes, as OVF Tool carries them
        appliance = replace(appliance, annotation=(vm.get("annotation"), "A human-readable annotation"))
    name = options.name or vm.name
    base = safe_name(name, fallback=os.path.splitext(os.path.basename(src))[0])
    warnings = list(vm.warnings)
    snapshot, refs = snapshot_disks(vm, options.snapshot) if options.snapshot else (None, tuple(vm.disks))
    disks = tuple(PlannedDisk(ref, f"{base}-disk{i + 1}.vmdk", f"file{i + 1}", f"vmdisk{i + 1}")
                  for i, ref in enumerate(refs))
    return ExportPlan(
        vmx=src, vm=vm, name=name, base=base, dest=resolve_dest(options.dest, base, fmt), format=fmt,
        codec=select_codec(options.codec, options.compression, QCOW2_WINDOW_BITS if "qcow2" in images else 15),
        threads=resolve_threads(options.threads),
        algorithm=manifest.check_algorithm(options.manifest), flags=flags,
        max_hardware_version=options.max_hardware_version, include_images=options.include_images,
        signing=(options.private_key, options.certificate, options.private_key_passphrase)
        if options.private_key and options.certificate else None,
        disks=disks, side_files=_side_files(vm, base, len(disks) + 1, options.include_images, warnings),
        appliance=appliance, warnings=tuple(warnings), images=images, snapshot=snapshot)
