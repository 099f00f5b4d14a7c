# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Export benchmark: ovatool.vmware.ova_export against qemu-img, in the same run, on the same disk.

Not a test (CI does not run it). It builds a realistic VM disk (an ext4 file system filled with real
files from this machine, most of the capacity left empty) as monolithicSparse and monolithicFlat, then
times, alternating, ``qemu-img convert -O vmdk -o subformat=streamOptimized`` and our export through
the Ansible module (``ansible localhost -m ovatool.vmware.ova_export``) at default settings, with each
codec, and with 1 and all threads. It prints wall time, MB/s of allocated data, output bytes, the
ratios against qemu-img, and the peak RSS of each run's process tree; and the compression bound
(one core's codec throughput on the same grains, times the cores). With ``--cold`` the VM's files are dropped
from the page cache before every run, for every tool alike: on a hypervisor host the disks of a VM are rarely
cached, and the reads then compete with the compression.

    bash scripts/bench.sh --size-gib 8 --data-gib 2

(scripts/bench.sh sets up the virtualenv and the import paths, then runs this file.)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS = os.path.join(ROOT, ".build", "collections")

try:
    import chart
    from support import vmfactory
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export import codec as codecs
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.pipeline import grain_batches
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.profile import STAGES, Profile
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.disk import open_disk
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.vmdk import GRAIN_BYTES
except ImportError as exc:
    raise SystemExit(f"{exc}: run the benchmark as `bash scripts/bench.sh ...`, which sets the import paths") from None

GiB = 1024 ** 3
MB = 1000 ** 2


def measure(argv: List[str], env: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    """Run a command; wall seconds and peak RSS (MiB) of its process tree via wait4."""
    with tempfile.TemporaryFile() as log:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)  # pylint: disable=consider-using-with
        status, usage = os.wait4(proc.pid, 0)[1:]
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
        if proc.returncode != 0:
            log.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed:\n{log.read().decode(errors='replace')[-3000:]}")
    return {"wall": wall, "rss_mib": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime}


def build_disks(work: str, size: int, data: int) -> Dict[str, str]:
    existing = {kind: os.path.join(work, kind, "bench.vmx") for kind in ("monolithicSparse", "monolithicFlat")}
    if all(os.path.exists(path) for path in existing.values()):
        print(f"reusing the disks in {work}", flush=True)
        return existing
    raw = os.path.join(work, "disk.raw")
    print(f"building a {size / GiB:.1f} GiB ext4 image with {data / GiB:.2f} GiB of real files ...", flush=True)
    vmfactory.make_fs_image(raw, size, data, work)
    vmx = {}
    for kind in ("monolithicSparse", "monolithicFlat"):
        folder = os.path.join(work, kind)
        os.makedirs(folder, exist_ok=True)
        vmfactory.convert(raw, os.path.join(folder, "disk.vmdk"), kind)
        vmx[kind] = vmfactory.write_vmx(os.path.join(folder, "bench.vmx"), f"bench-{kind}",
                                        [("scsi0:0", "disk.vmdk")])
    os.unlink(raw)
    return vmx


def compression_bound(vmdk: str, cores: int) -> Dict[str, Dict[str, float]]:
    """One core's throughput of each codec (default level) on the disk's allocated grains, x cores."""
    zero = bytes(GRAIN_BYTES)
    result = {}
    with open_disk(vmdk) as disk:
        for name in codecs.available():
            codec = codecs.select_codec(name, "fast")
            total = 0
            busy = 0.0
            for first, count in grain_batches(disk.allocated_ranges(), disk.capacity):
                data = disk.read(first * GRAIN_BYTES, min(count * GRAIN_BYTES, disk.capacity - first * GRAIN_BYTES))
                for at in range(0, len(data), GRAIN_BYTES):
                    chunk = data[at:at + GRAIN_BYTES]
                    if chunk == zero:
                        continue
                    began = time.perf_counter()
                    codec.compress(chunk)
                    busy += time.perf_counter() - began
                    total += len(chunk)
            per_core = total / busy / MB
            result[name] = {"one_core_mbps": per_core, "bound_mbps": per_core * cores, "level": codec.level}
    return result


def run_ansible(module: str, module_args: Dict[str, object], out_dir: str, python: str) -> tuple:
    """One module through ``ansible`` (action plugins included); (wall and peak RSS, the module's result)."""
    tree = os.path.join(out_dir, "tree")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1")
    argv = [os.path.join(os.path.dirname(python), "ansible"), "localhost", "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={python}", "-m", module, "-a", json.dumps(module_args), "-t", tree]
    stats = measure(argv, env)
    with open(os.path.join(tree, "localhost")) as handle:
        result = json.load(handle)
    shutil.rmtree(tree)
    return stats, result


def run_module(vmx: str, out_dir: str, args: Dict[str, object], python: str, keep: bool = False) -> Dict[str, object]:
    module_args = dict(src=vmx, dest=os.path.join(out_dir, "bench.ova"), force=True)
    module_args.update(args)
    stats, result = run_ansible("ovatool.vmware.ova_export", module_args, out_dir, python)
    stats.update(out_bytes=result["disks"][0]["written_bytes"], engine=result["elapsed_seconds"],
                 allocated=result["disks"][0]["allocated_bytes"], codec=f"{result['codec']} {result['compression_level']}",
                 threads=result["threads"], dest=result["dest"], upload_peak=result.get("upload_peak_bytes"))
    if not keep and not result["dest"].startswith("s3://"):
        os.unlink(result["dest"])
    return stats


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its waited-for children (from /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def s3_compare(vmx: str, work: str, rounds: int, python: str) -> None:
    """Export straight to S3 (SeaweedFS on loopback, real credentials) against a local export of the same disk,
    and against a local export followed by ova_upload; the server's CPU time is measured apart."""
    from support import servers  # pylint: disable=import-outside-toplevel

    server = servers.SeaweedS3(os.path.join(work, "s3"), credentials=(servers.S3_ACCESS, servers.S3_SECRET),
                               volume_mb=1024, volumes=32)
    try:
        server.make_bucket("bench")
        s3 = {"endpoint_url": server.endpoint, "access_key": servers.S3_ACCESS, "secret_key": servers.S3_SECRET,
              "region": "us-east-1"}
        samples: Dict[str, List[Dict[str, float]]] = {}
        for round_no in range(rounds):
            order = ["local", "s3", "local+upload"]
            for label in order if round_no % 2 == 0 else order[::-1]:
                print(f"  {label} (round {round_no + 1})", flush=True)
                server_cpu = cpu_seconds(server.proc.pid)
                if label == "s3":
                    stat = run_module(vmx, work, dict(s3, dest="s3://bench/direct/"), python)
                elif label == "local":
                    stat = run_module(vmx, work, {}, python)
                else:
                    stat = run_module(vmx, work, {}, python, keep=True)
                    upload = run_ansible("ovatool.vmware.ova_upload", dict(
                        s3, src=stat["dest"], dest="s3://bench/uploaded/", force=True), work, python)[0]
                    os.unlink(str(stat["dest"]))
                    stat["wall"] += upload["wall"]
                    stat["cpu"] += upload["cpu"]
                    stat["rss_mib"] = max(stat["rss_mib"], upload["rss_mib"])
                stat["server_cpu"] = cpu_seconds(server.proc.pid) - server_cpu
                for key in ("direct/bench.ova", "uploaded/bench.ova"):  # room for the next round
                    server.client().delete_object(Bucket="bench", Key=key)
                samples.setdefault(label, []).append(stat)
        best = {label: min(runs, key=lambda s: s["wall"]) for label, runs in samples.items()}
        local = best["local"]
        # the server shares this machine's cores; in use it runs elsewhere. With every core busy, the run's wall
        # time splits between our CPU and the server's in proportion: "wall, server elsewhere" estimates it so.
        print("\n| run | wall s | x local export | our CPU s | x local CPU | S3 server CPU s | wall, server elsewhere "
              "(est.) s | x local (est.) | MB/s | peak RSS MiB | upload buffers MiB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, stat in best.items():
            peak = stat.get("upload_peak")
            alone = stat["wall"] * stat["cpu"] / (stat["cpu"] + stat["server_cpu"])
            print(f"| {label} | {stat['wall']:.1f} | {stat['wall'] / local['wall']:.2f} | {stat['cpu']:.1f} | "
                  f"{stat['cpu'] / local['cpu']:.2f} | {stat['server_cpu']:.1f} | {alone:.1f} | "
                  f"{alone / local['wall']:.2f} | {float(stat['allocated']) / MB / stat['wall']:.0f} | "
                  f"{stat['rss_mib']:.0f} | {'' if not peak else '%.0f' % (float(peak) / 2 ** 20)} |")
    finally:
        server.close()


def stdlib_host(work: str) -> Dict[str, str]:
    """A host Python with the standard library only (a venv without pip, as on ESXi) and a wheelhouse of the
    accelerator's wheels for it on the "controller" (pip download, once)."""
    bare = os.path.join(work, "bare-python")
    if not os.path.exists(os.path.join(bare, "bin", "python")):
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", bare], check=True)
    house = os.path.join(work, "wheelhouse")
    if not os.path.isdir(house) or len(os.listdir(house)) < 2:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", house,
                        "isal", "zlib-ng"], check=True)
    return {"python": os.path.join(bare, "bin", "python"), "wheelhouse": house}


def run_playbook(vmx: str, out_dir: str, host: Dict[str, str], accelerator: str) -> Dict[str, object]:
    """playbooks/export_all.yml on localhost whose Python is the stdlib-only one (power management off: no
    VMware here; everything else as by default, verification included). The disk's size is read from the OVA
    (tarfile), the codec and the engine's seconds from the role's "exported to" line."""
    out = os.path.join(out_dir, "playbook-out")
    extra = {"ovatool_vms": [vmx], "ovatool_output_dir": out, "ovatool_force": True, "ovatool_manage_power": False,
             "ovatool_accelerator": accelerator, "ovatool_wheelhouse": host["wheelhouse"],
             "ovatool_wheel_download": False}
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1")
    log = os.path.join(out_dir, "playbook.log")
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), os.path.join(ROOT, "playbooks",
            "export_all.yml"), "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={host['python']}",
            "-e", json.dumps(extra)]
    with open(log, "w") as handle:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env)  # pylint: disable=consider-using-with
        status, usage = os.wait4(proc.pid, 0)[1:]
        wall = time.perf_counter() - began
    with open(log) as handle:
        text = handle.read()
    if status != 0:
        raise SystemExit(f"export_all.yml failed:\n{text[-3000:]}")
    match = re.search(r"exported to (\S+) in ([0-9.]+) s.*?\((\S+) level (\d)\)", text)
    if not match:
        raise SystemExit(f"no 'exported to' line in the playbook's output:\n{text[-3000:]}")
    with tarfile.open(match.group(1)) as archive:
        disk = next(m for m in archive.getmembers() if m.name.endswith(".vmdk"))
    stats = {"wall": wall, "rss_mib": usage.ru_maxrss / 1024, "out_bytes": disk.size, "engine": float(match.group(2)),
             "codec": f"{match.group(3)} {match.group(4)}"}
    shutil.rmtree(out)
    return stats


def run_qemu(vmdk: str, out_dir: str) -> Dict[str, object]:
    out = os.path.join(out_dir, "qemu-stream.vmdk")
    stats = measure(["qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", vmdk, out])
    stats["out_bytes"] = os.path.getsize(out)
    os.unlink(out)
    return stats


def run_peer(vmdk_convert: str, level: int, vmdk: str, out_dir: str) -> Dict[str, object]:
    """VMware's vmdk-convert (open-vmdk, C, multithreaded zlib): a bare streamOptimized disk, no OVA. It reads
    sparse VMDKs and raw images but not a flat disk's descriptor, so a monolithicFlat disk is given as its
    extent file (the raw data)."""
    with open_disk(vmdk) as disk:
        source = disk.extents[0][1].path if disk.create_type == "monolithicFlat" else vmdk
    out = os.path.join(out_dir, "peer-stream.vmdk")
    stats = measure([vmdk_convert, "-c", str(level), "-n", "2", source, out])
    stats["out_bytes"] = os.path.getsize(out) if os.path.exists(out) else 0
    if not stats["out_bytes"]:
        raise SystemExit(f"vmdk-convert wrote nothing for {source}")
    os.unlink(out)
    return stats


IMAGE_RUNS = [("qcow2", ["-O", "qcow2", "-c"]), ("vhdx", ["-O", "vhdx"]), ("vhd", ["-O", "vpc", "-o", "subformat=fixed"])]


def run_export_images(vmx: str, out_dir: str, images: List[str], python: str) -> Dict[str, object]:
    """ova_export through Ansible writing the OVA and ``images`` in one pass; every file removed afterwards."""
    args = dict(src=vmx, dest=os.path.join(out_dir, "bench.ova"), force=True, images=images)
    stats, result = run_ansible("ovatool.vmware.ova_export", args, out_dir, python)
    files = result["files"]
    stats.update(engine=result["elapsed_seconds"], vmdk_bytes=result["disks"][0]["written_bytes"],
                 out_bytes=sum(os.path.getsize(path) for path in files),
                 image_bytes={image["format"]: image["size"] for image in result.get("images", [])})
    for path in files + [os.path.join(out_dir, ".bench.ova.source")]:
        if os.path.exists(path):
            os.unlink(path)
    return stats


def run_qemu_image(vmdk: str, out_dir: str, image: str, argv: List[str]) -> Dict[str, object]:
    out = os.path.join(out_dir, f"qemu.{image}")
    stats = measure(["qemu-img", "convert"] + argv + [vmdk, out])
    stats["out_bytes"] = os.path.getsize(out)
    stats["sum_wall"] = measure(["sha256sum", out])["wall"]  # what a pipeline publishing the image adds
    os.unlink(out)
    return stats


def images_compare(vmx: str, work: str, rounds: int, python: str) -> None:
    """The OVA alone, the OVA with qcow2, VHDX and VHD from the same read, and qemu-img convert to each of those
    from the source VMDK, alternating; best of ``rounds``."""
    vmdk = os.path.join(os.path.dirname(vmx), "disk.vmdk")
    runs = [("ovatool OVA alone", lambda: run_export_images(vmx, work, [], python)),
            ("ovatool OVA + qcow2 + vhdx + vhd", lambda: run_export_images(vmx, work, ["qcow2", "vhdx", "vhd"], python))]
    runs += [(f"qemu-img convert {' '.join(argv)}", lambda image=image, argv=argv: run_qemu_image(vmdk, work, image, argv))
             for image, argv in IMAGE_RUNS]
    samples: Dict[str, List[Dict[str, object]]] = {}
    for round_no in range(rounds):
        order = runs if round_no % 2 == 0 else list(reversed(runs))
        for label, run in order:
            print(f"  {label} (round {round_no + 1})", flush=True)
            samples.setdefault(label, []).append(run())
    best = {label: min(found, key=lambda s: s["wall"]) for label, found in samples.items()}
    alone, both = best[runs[0][0]], best[runs[1][0]]
    qemu_sum = sum(best[label]["wall"] for label, _run in runs[2:])
    print("| run | wall s | engine s | output MiB | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|")
    for label, stat in best.items():
        engine = f"{stat['engine']:.1f}" if "engine" in stat else ""
        print(f"| {label} | {stat['wall']:.1f} | {engine} | {stat['out_bytes'] / 2 ** 20:,.0f} | {stat['rss_mib']:.0f} |")
    sums = sum(best[label]["sum_wall"] for label, _run in runs[2:])
    print(f"| qemu-img, the three added up | {qemu_sum:.1f} | | | |")
    print(f"| qemu-img, the three, each followed by sha256sum | {qemu_sum + sums:.1f} | | | |")
    print()
    print(f"OVA + 3 images against the OVA alone: {both['wall'] / alone['wall']:.2f}x wall "
          f"({both['engine'] / alone['engine']:.2f}x engine); target at most 1.3x")
    print(f"qemu-img's three runs against the OVA + 3 images: {qemu_sum / both['wall']:.1f}x "
          f"(the OVA and qemu-img's three: {(qemu_sum + alone['wall']) / both['wall']:.1f}x; with a sha256sum of "
          f"each of qemu-img's images, as our SHA256SUMS has: {(qemu_sum + sums) / both['wall']:.1f}x); "
          "target at least 8x")
    print(f"the OVA's disk with a 4 KiB window (compressed once for qcow2): {both['vmdk_bytes']:,} bytes against "
          f"{alone['vmdk_bytes']:,} ({both['vmdk_bytes'] / alone['vmdk_bytes'] - 1:+.2%})")
    for image, size in sorted(both["image_bytes"].items()):
        qemu = next(best[label] for label, _run in runs[2:] if label.startswith("qemu-img") and
                    IMAGE_RUNS[[i for i, _a in IMAGE_RUNS].index(image)][1][1] in label)
        print(f"  {image}: {size / 2 ** 20:,.0f} MiB, qemu-img's {qemu['out_bytes'] / 2 ** 20:,.0f} MiB")


def evict(vmx: str) -> None:
    """Drop the VM's files from the page cache (``--cold``): a hypervisor host's VM disks are rarely in it."""
    folder = os.path.dirname(vmx)
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fdatasync(fd)  # only clean pages can be dropped
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def profile_export(vmx: str, out_dir: str, threads: int) -> Dict[str, object]:
    """One export by the engine in this process with a Profile: wall time and CPU seconds per stage and thread."""
    profile = Profile()
    began = time.perf_counter()
    result = export_vm(ExportOptions(src=vmx, dest=os.path.join(out_dir, "profile.ova"), force=True,
                                     threads=threads, profile=profile))
    profile.wall = time.perf_counter() - began
    os.unlink(result["dest"])
    return {"profile": profile, "allocated": result["disks"][0]["allocated_bytes"],
            "codec": f"{result['codec']} {result['compression_level']}", "threads": result["threads"],
            "digest": result["digests"][result["disks"][0]["href"]]}


def profile_rounds(vmx: str, out_dir: str, counts: List[int], rounds: int, cold: bool) -> tuple:
    """Each round exports once per thread count, alternating the order (this machine's speed drifts between
    rounds); the best run per count, and each round's ratio of the first count's wall time to the last's."""
    best: Dict[int, Dict[str, object]] = {}
    ratios = []
    for round_no in range(rounds):
        walls = {}
        for threads in counts if round_no % 2 == 0 else counts[::-1]:
            if cold:
                evict(vmx)
            run = profile_export(vmx, out_dir, threads)
            walls[threads] = run["profile"].wall
            print(f"  threads={threads} (round {round_no + 1}): {walls[threads]:.2f} s", flush=True)
            if threads not in best or walls[threads] < best[threads]["profile"].wall:
                best[threads] = run
        ratios.append(walls[counts[0]] / walls[counts[-1]])
    return best, ratios


def print_profile(kind: str, runs: Dict[int, Dict[str, object]], ratios: List[float], cores: int) -> None:
    """Per stage and per thread CPU, the serial share, and the wall time this implies on more cores.

    Model: the pool's stages spread over the cores; the reader (calling thread), the writer thread and the hash
    thread are one thread each, running beside each other and the pool. So the wall time on N cores is at least the longest
    serial thread's CPU and at least all CPU / N: wall(N) = max(longest serial thread, total CPU / N). Memory
    bandwidth, the disk and the page cache are taken to keep up (true here: the data is cached)."""
    print(f"\n{kind}: CPU seconds per stage (best of the rounds; {cores} cores here)")
    print("| stage | " + " | ".join(f"threads={t}" for t in runs) + " |")
    print("|---|" + "---:|" * len(runs))
    by_stage = {t: r["profile"].by_stage() for t, r in runs.items()}
    for stage in STAGES:
        print(f"| {stage} | " + " | ".join(f"{by_stage[t].get(stage, 0.0):.2f}" for t in runs) + " |")
    print("\n| thread | " + " | ".join(f"threads={t}" for t in runs) + " |")
    print("|---|" + "---:|" * len(runs))
    by_thread = {t: r["profile"].by_thread() for t, r in runs.items()}
    for thread in ("MainThread", "ovatool-writer", "ovatool-hash", "compression pool"):
        print(f"| {thread} | " + " | ".join(f"{by_thread[t].get(thread, 0.0):.2f}" for t in runs) + " |")
    last = runs[max(runs)]
    threads = by_thread[max(runs)]
    total = sum(threads.values())
    serial_threads = [seconds for name, seconds in threads.items() if name != "compression pool"]
    serial = sum(serial_threads)
    longest = max(serial_threads)
    allocated = last["allocated"]
    walls = [f"threads={t} {r['profile'].wall:.2f} s ({allocated / MB / r['profile'].wall:.0f} MB/s)"
             for t, r in runs.items()]
    print("\nwall: " + ", ".join(walls))
    if 1 in runs and max(runs) > 1:
        print(f"threads={max(runs)} / threads=1: {runs[1]['profile'].wall / last['profile'].wall:.2f}x (best runs); "
              f"per round {', '.join('%.2f' % r for r in ratios)}, median {sorted(ratios)[len(ratios) // 2]:.2f}x")
    print(f"CPU {total:.2f} s, of which serial threads {serial:.2f} s ({100 * serial / total:.0f} %); "
          f"longest serial thread {longest:.2f} s")
    print("| cores | projected wall s | projected MB/s |")
    print("|---:|---:|---:|")
    for n in (2, 4, 8, 16, 64):
        wall = max(longest, total / n)
        print(f"| {n} | {wall:.2f} | {allocated / MB / wall:.0f} |")
    digests = {r["digest"] for r in runs.values()}
    if last["codec"].startswith("isal"):  # docs/formats.md: ISA-L's encoding of a grain can vary run to run
        print("output: not compared across thread counts (ISA-L may encode a grain differently each run; "
              "the data is the same)")
    else:
        print(f"output: {'identical' if len(digests) == 1 else 'DIFFERENT'} disk members across thread counts "
              f"(sha256 {next(iter(digests))[:16]}...)")


def huge_sparse(work: str, python: str) -> None:
    """Peak RSS for a 1 TiB monolithicSparse disk holding little data, spread over its whole span."""
    folder = os.path.join(work, "huge")
    os.makedirs(folder, exist_ok=True)
    vmdk = os.path.join(folder, "huge.vmdk")
    vmfactory.run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicSparse", vmdk, "1T"])
    commands = []
    for index, offset_gib in enumerate((0, 1, 100, 333, 512, 700, 900, 1023)):
        commands += ["-c", f"write -P {index + 1} {offset_gib}G 48M"]
    vmfactory.run(["qemu-io", "-f", "vmdk", *commands, vmdk])
    vmx = vmfactory.write_vmx(os.path.join(folder, "huge.vmx"), "huge", [("scsi0:0", "huge.vmdk")])
    stat = run_module(vmx, folder, {}, python)
    print(f"\n1 TiB monolithicSparse, {stat['allocated'] / 2 ** 20:.0f} MiB allocated: wall {stat['wall']:.1f} s, "
          f"peak RSS {stat['rss_mib']:.0f} MiB ({stat['codec']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=8.0, help="disk capacity (default 8)")
    parser.add_argument("--data-gib", type=float, default=2.0, help="real files copied into it (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per variant (default 2)")
    parser.add_argument("--workdir", default=None, help="where the disks are built (default: a temp dir)")
    parser.add_argument("--formats", default="monolithicSparse,monolithicFlat")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--huge-only", action="store_true", help="only the 1 TiB sparse disk memory check")
    parser.add_argument("--profile", action="store_true",
                        help="only the engine in this process: CPU per stage and thread, projected core scaling")
    parser.add_argument("--s3", action="store_true",
                        help="only: export straight to S3 (SeaweedFS on loopback) against a local export, and "
                             "against a local export followed by ova_upload")
    parser.add_argument("--cold", action="store_true",
                        help="main table and --profile: drop the VM's files from the page cache before every "
                             "run (every tool alike), as on a hypervisor host whose VM disks are not cached")
    parser.add_argument("--images", action="store_true",
                        help="only: the OVA alone, the OVA with qcow2, VHDX and VHD in the same pass, and qemu-img "
                             "convert to each of those")
    parser.add_argument("--vmdk-convert", default=None,
                        help="path of VMware's vmdk-convert (open-vmdk) to run beside qemu-img")
    args = parser.parse_args()
    python = sys.executable
    work = args.workdir or tempfile.mkdtemp(prefix="ovatool-bench-")
    os.makedirs(work, exist_ok=True)
    cores = os.cpu_count() or 1
    if args.huge_only:
        huge_sparse(work, python)
        return 0
    try:
        vmx = build_disks(work, int(args.size_gib * GiB) // GiB * GiB or int(args.size_gib * GiB),
                          int(args.data_gib * GiB))
        if args.s3:
            for kind in args.formats.split(","):
                print(f"{kind}:", flush=True)
                s3_compare(vmx[kind], work, args.rounds, python)
            return 0
        if args.images:
            for kind in args.formats.split(","):
                print(f"{kind}:", flush=True)
                images_compare(vmx[kind], work, args.rounds, python)
            return 0
        if args.profile:
            for kind in args.formats.split(","):
                counts = sorted({1, cores})
                print_profile(kind, *profile_rounds(vmx[kind], work, counts, args.rounds, args.cold), cores)
            return 0
        available = codecs.available()
        variants = [("ovatool default", {})]
        variants += [(f"ovatool {name}", {"codec": name}) for name in available]
        variants += [("ovatool default, 1 thread", {"threads": 1})]
        host = stdlib_host(work)
        variants += [("export_all.yml, stdlib host, accelerator auto", ("playbook", "auto")),
                     ("export_all.yml, stdlib host, accelerator false", ("playbook", "false"))]
        peers = []
        if args.vmdk_convert:
            variants += [("ovatool zlib 1", {"codec": "zlib", "compression": 1}),
                         ("ovatool zlib 6", {"codec": "zlib", "compression": 6})]
            peers = [(f"vmdk-convert -c {level} -n 2", level) for level in (1, 6)]
        rows = []
        for kind in args.formats.split(","):
            vmdk = os.path.join(os.path.dirname(vmx[kind]), "disk.vmdk")
            bound = compression_bound(vmdk, cores)
            samples: Dict[str, List[Dict[str, object]]] = {}
            for round_no in range(args.rounds):
                order = [("qemu-img convert", None)] + [(label, ("peer", level)) for label, level in peers] + variants
                if round_no % 2:
                    order.reverse()
                for label, module_args in order:
                    print(f"  {kind}: {label} (round {round_no + 1})", flush=True)
                    if args.cold:
                        evict(vmx[kind])
                    if module_args is None:
                        stat = run_qemu(vmdk, work)
                    elif isinstance(module_args, tuple) and module_args[0] == "playbook":
                        stat = run_playbook(vmx[kind], work, host, module_args[1])
                    elif isinstance(module_args, tuple):
                        stat = run_peer(args.vmdk_convert, module_args[1], vmdk, work)
                        stat["codec"] = f"zlib {module_args[1]} (C)"
                    else:
                        stat = run_module(vmx[kind], work, module_args, python)
                    samples.setdefault(label, []).append(stat)
            best = {label: min(runs, key=lambda s: s["wall"]) for label, runs in samples.items()}
            qemu = best["qemu-img convert"]
            allocated = next(s["allocated"] for s in best.values() if "allocated" in s)
            for label, stat in best.items():
                codec_name, level = (str(stat.get("codec", "")).split(" ", 1) + [""])[:2]
                bound_mbps = bound.get(codec_name, {}).get("bound_mbps") \
                    if str(bound.get(codec_name, {}).get("level")) == level else None
                mbps = allocated / MB / stat["wall"]
                rows.append({
                    "format": kind, "run": label, "codec": stat.get("codec", "zlib 6 (qemu)"),
                    "wall_s": stat["wall"], "engine_s": stat.get("engine"), "mbps": mbps,
                    "out_mib": stat["out_bytes"] / 2 ** 20, "speedup": qemu["wall"] / stat["wall"],
                    "size_ratio": stat["out_bytes"] / qemu["out_bytes"], "rss_mib": stat["rss_mib"],
                    "of_bound": (mbps / bound_mbps) if bound_mbps and label.startswith(("ovatool", "export_all"))
                    else None,
                })
            with open_disk(vmdk) as disk:  # the disk's own: --workdir may hold disks built with other sizes
                capacity = disk.capacity
            print(f"\n{kind}: capacity {capacity / GiB:g} GiB, allocated {allocated / 2 ** 30:.2f} GiB; "
                  "compression bound (one core x %d cores): %s" % (cores, ", ".join(
                      f"{n} L{b['level']} {b['one_core_mbps']:.0f}x{cores}={b['bound_mbps']:.0f} MB/s"
                      for n, b in bound.items())))
        print("\n| format | run | codec | wall s | engine s | MB/s | output MiB | x faster than qemu-img "
              "| size vs qemu-img | % of bound | peak RSS MiB |")
        print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['format']} | {r['run']} | {r['codec']} | {r['wall_s']:.1f} | "
                  f"{'' if r['engine_s'] is None else '%.1f' % r['engine_s']} | {r['mbps']:.0f} | "
                  f"{r['out_mib']:.0f} | {r['speedup']:.1f} | {r['size_ratio']:.3f} | "
                  f"{'' if r['of_bound'] is None else '%.0f %%' % (100 * r['of_bound'])} | {r['rss_mib']:.0f} |")
        for kind in args.formats.split(","):  # the table as a picture, beside it (tests/benchmarks/chart.py)
            path = os.path.join(work, f"chart-{kind}.svg")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(chart.svg([{"run": r["run"], "codec": r["codec"], "wall s": f"{r['wall_s']:.1f}",
                                         "peak RSS MiB": f"{r['rss_mib']:.0f}"} for r in rows if r["format"] == kind],
                                       f"{kind}: time and peak memory ({cores} cores, {time.strftime('%Y-%m-%d')})"))
            print(f"chart: {path}")
        huge_sparse(work, python)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
