# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build test and demo VMs from real content with real tools (mkfs.ext4 -d, qemu-img).

Used by the tests, the benchmark and ``scripts/demo.sh`` (``python -m support.vmfactory demo DIR`` from ``tests/``).
"""
from __future__ import annotations

import argparse
import lzma
import os
import shutil
import subprocess
import sys
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

MiB = 1024 * 1024
CONTENT_ROOTS = ("/usr/share/doc", "/usr/share/common-licenses", "/usr/lib/python3", "/usr/share",
                 "/usr/lib", "/usr/bin", "/opt", "/root/.pyenv")
# files that are compressed already: their data does not shrink again
COMPRESSED_SUFFIXES = (".gz", ".xz", ".bz2", ".zst", ".whl", ".zip", ".jar", ".deb", ".png", ".jpg", ".jpeg")
COMPRESSED_ROOTS = ("/usr", "/opt", "/root", "/var/cache")
# bytes with their top bit cleared: random, slow to deflate, but 7 bits each, so they still shrink a little and
# the export's test for incompressible grains (stored, not deflated) does not take them
_SEVEN_BITS = bytes(range(128)) * 2


def run(argv: Sequence[str]) -> str:
    done = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def gather_files(dest: str, budget: int, roots: Iterable[str] = CONTENT_ROOTS,
                 suffixes: Optional[Tuple[str, ...]] = None) -> int:
    """Copy real files from this machine into ``dest`` until ``budget`` bytes; returns bytes copied. With
    ``suffixes``, only files whose names end so."""
    os.makedirs(dest, exist_ok=True)
    used = 0
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if suffixes is not None and not name.lower().endswith(suffixes):
                    continue
                src = os.path.join(folder, name)
                if not os.path.isfile(src) or os.path.islink(src):
                    continue
                try:
                    size = os.path.getsize(src)
                except OSError:
                    continue
                if size > budget // 4 or used + size > budget:
                    continue
                target = os.path.join(dest, os.path.relpath(src, "/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                try:
                    shutil.copyfile(src, target)
                except OSError:
                    continue
                used += size
                if used >= budget * 0.98:
                    return used
    return used


def gather_compressed(dest: str, budget: int) -> int:
    """Files that are compressed already (packages, archives, images found on this machine) into ``dest``; where
    the machine has too few, real files compressed here with xz fill the budget."""
    used = gather_files(dest, budget, COMPRESSED_ROOTS, COMPRESSED_SUFFIXES)
    stage = os.path.join(dest, "xz-of-real-files")
    plain = os.path.join(dest, ".plain")
    while used < budget * 0.9:
        if gather_files(plain, min(8 * MiB, budget - used)) == 0:
            break
        for folder, _dirs, files in os.walk(plain):
            for name in files:
                source = os.path.join(folder, name)
                with open(source, "rb") as handle:
                    packed = lzma.compress(handle.read())
                target = os.path.join(stage, f"{used}-{name}.xz")
                os.makedirs(stage, exist_ok=True)
                with open(target, "wb") as handle:
                    handle.write(packed)
                used += len(packed)
        shutil.rmtree(plain)
    return used


def make_fs_image(path: str, size: int, content_bytes: int, workdir: Optional[str] = None,
                  compressed: bool = False) -> str:
    """A raw image of ``size`` bytes holding an ext4 file system filled with real files (with ``compressed``,
    only files that are compressed already: archives, packages, images)."""
    stage = os.path.join(workdir or os.path.dirname(path), os.path.basename(path) + ".content")
    if compressed:
        gather_compressed(stage, content_bytes)
    else:
        gather_files(stage, content_bytes)
    with open(path, "wb") as handle:
        handle.truncate(size - size % 4096)
    run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", "-d", stage, path])
    shutil.rmtree(stage, ignore_errors=True)
    if size % 4096:  # a tail that is not a whole block (and maybe not a whole grain)
        with open(path, "r+b") as handle:
            handle.truncate(size)
            handle.seek(size - 7)
            handle.write(b"tail!\n\x01")
    return path


def convert(raw: str, vmdk: str, subformat: str, adapter: str = "lsilogic") -> str:
    """qemu-img convert raw -> vmdk with the given subformat."""
    run(["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", f"subformat={subformat},adapter_type={adapter}",
         raw, vmdk])
    return vmdk


def make_vmfs(raw: str, folder: str, name: str, create_type: str = "vmfs") -> str:
    """An ESXi-style disk: a descriptor with one VMFS extent and a -flat file (qemu-img cannot make it)."""
    flat = os.path.join(folder, f"{name}-flat.vmdk")
    run(["cp", "--sparse=always", raw, flat])  # keep the holes, as thin VMFS does
    size = os.path.getsize(raw)
    if size % 512:
        with open(flat, "r+b") as handle:
            handle.truncate(size + (-size % 512))
    sectors = os.path.getsize(flat) // 512
    descriptor = os.path.join(folder, f"{name}.vmdk")
    with open(descriptor, "w", encoding="utf-8") as handle:
        handle.write(
            "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\nparentCID=ffffffff\n"
            f"isNativeSnapshot=\"no\"\ncreateType=\"{create_type}\"\n\n# Extent description\n"
            f"RW {sectors} VMFS \"{name}-flat.vmdk\"\n\n# The Disk Data Base \n#DDB\n\n"
            "ddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"14\"\n")
    return descriptor


def qemu_io(path: str, *commands: str) -> None:
    """Write into a VMDK with qemu-io (``write -P 0x11 0 1M``, ``write -z 151M 2M``)."""
    argv = ["qemu-io", "-f", "vmdk"]
    for command in commands:
        argv += ["-c", command]
    run(argv + [path])


def snapshot_child(folder, name: str, parent: str) -> str:
    """A snapshot (delta) VMDK ``name`` in ``folder`` over ``parent``, as VMware's snapshots chain them."""
    path = os.path.join(str(folder), name)
    run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", "-b", parent, "-F", "vmdk", path])
    return path


def write_vmx(path: str, name: str, disks: List[Tuple[str, str]], extra: Optional[Dict[str, str]] = None,
              guest_os: str = "ubuntu-64") -> str:
    """A VMX with the given disks: [(address like 'scsi0:0', file name)]."""
    lines = {
        ".encoding": "UTF-8", "config.version": "8", "virtualHW.version": "19", "displayName": name,
        "guestOS": guest_os, "numvcpus": "2", "cpuid.coresPerSocket": "1", "memsize": "1024",
        "ethernet0.present": "TRUE", "ethernet0.virtualDev": "vmxnet3", "ethernet0.connectionType": "nat",
        "ethernet0.addressType": "generated", "ethernet0.generatedAddress": "00:0c:29:12:34:56",
    }
    controllers = set()
    for address, file_name in disks:
        ctrl, unit = address.split(":")
        if ctrl not in controllers:
            controllers.add(ctrl)
            lines[f"{ctrl}.present"] = "TRUE"
            if ctrl.startswith("scsi"):
                lines[f"{ctrl}.virtualDev"] = "lsilogic"
        lines[f"{address}.present"] = "TRUE"
        lines[f"{address}.fileName"] = file_name
    lines.update(extra or {})
    with open(path, "w", encoding="utf-8", newline="\r\n") as handle:
        for key, value in lines.items():
            escaped = value.replace("|", "|7C").replace('"', "|22").replace("\n", "|0A")  # VMX hex escapes
            handle.write(f'{key} = "{escaped}"\n')
    return path


def noise_vm(folder: str, name: str = "Slow", mib: int = 96) -> str:
    """A VM whose one disk holds ``mib`` MiB of random 7-bit data: slow to compress (zlib level 9, one thread takes
    seconds), so that a test can act on an export while it runs. (Full 8-bit random data would be stored, not
    compressed, and exported fast.)"""
    os.makedirs(folder, exist_ok=True)
    raw = os.path.join(folder, "noise.raw")
    with open(raw, "wb") as handle:
        for _mib in range(mib):
            handle.write(os.urandom(MiB).translate(_SEVEN_BITS))
    base = name.lower()
    convert(raw, os.path.join(folder, f"{base}.vmdk"), "monolithicSparse")
    os.unlink(raw)
    return write_vmx(os.path.join(folder, f"{base}.vmx"), name, [("scsi0:0", f"{base}.vmdk")])


def make_demo(folder: str, size_mb: int = 512, content_mb: int = 96) -> str:
    """The README's demo VM: one monolithicSparse disk holding ext4 with real files, mostly empty."""
    vm_dir = os.path.join(folder, "vms", "demo-appliance")
    os.makedirs(vm_dir, exist_ok=True)
    raw = os.path.join(folder, "demo-disk.raw")
    make_fs_image(raw, size_mb * MiB, content_mb * MiB)
    convert(raw, os.path.join(vm_dir, "demo-appliance.vmdk"), "monolithicSparse")
    os.unlink(raw)
    return write_vmx(os.path.join(vm_dir, "demo-appliance.vmx"), "Demo Appliance",
                     [("scsi0:0", "demo-appliance.vmdk")])


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="make the demo VM under DIR/vms/")
    demo.add_argument("dir")
    demo.add_argument("--size-mb", type=int, default=512)
    demo.add_argument("--content-mb", type=int, default=96)
    args = parser.parse_args(argv)
    print(make_demo(args.dir, args.size_mb, args.content_mb))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
