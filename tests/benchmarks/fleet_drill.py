# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet drill, bigger than CI runs it, and the soak (not tests; CI does not run them).

    bash scripts/fleet.sh drill --hosts 12 --vms 3 --mib 64
    bash scripts/fleet.sh soak --runs 30 --hosts 3 --vms 2 --mib 8

``drill``: tests/support/fleet.py's six faults at once, then the run after them; prints the summary's counts,
the wall time against the slowest single host (that host exported alone, on the same data) and the
controller's peak memory. ``soak``: ``runs`` times, the VMs' disks are touched (so every VM has to be exported
again), export_all.yml is started and killed at a random moment (SIGTERM or SIGKILL of ansible-playbook, as an
operator or AWX cancelling a job), and a clean run follows; after every clean run the state must be whole:
every OVA current and readable, the running VMs running, nothing partial, no lock, no incomplete upload, no
process of ours. Needs root (sshd on loopback, a tmpfs), openssh and SeaweedFS, as the tests do.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import time

try:
    from support import ovacheck, servers
    from support.fleet import Fleet, Run, our_processes, recap, summaries
except ImportError as exc:
    raise SystemExit(f"{exc}: run it as `bash scripts/fleet.sh ...`, which sets the import paths") from None

MiB = 1024 * 1024


def bare_python(folder: pathlib.Path) -> str:
    """A venv with the standard library only (--without-pip), as the tests' ESXi-like hosts have."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    return str(folder / "bin" / "python")


def store(folder: pathlib.Path) -> servers.SeaweedS3:
    s3 = servers.SeaweedS3(str(folder), credentials=(servers.S3_ACCESS, servers.S3_SECRET), volume_mb=256, volumes=32)
    s3.make_bucket("releases")
    return s3


def check_whole(fleet: Fleet, work: pathlib.Path, every_ova: bool = True) -> list:
    """What is wrong with the state after a run (nothing, when the list is empty); ``every_ova``: each VM's OVA
    must be there (after a clean run)."""
    problems = []
    for host in fleet.hosts:
        for folder in (host.out, host.state):
            if folder.is_dir():
                left = [n for n in os.listdir(str(folder))
                        if n.endswith((".partial", ".lock", ".tmp", ".progress.json", ".urls.json"))]
                if left:
                    problems.append(f"{host.name}: {left}")
        if host.running() != [host.vms[0]]:
            problems.append(f"{host.name}: running {host.running()}")
        if not host.s3 and every_ova and host.sshd.proc.poll() is None:
            for vmx in host.vms:
                name = os.path.basename(vmx)[:-4] + ".ova"
                try:
                    ovacheck.read_ova(str(host.out / name))
                except (AssertionError, OSError) as exc:
                    problems.append(f"{host.name}: {name}: {exc}")
    if fleet.s3 is not None:
        uploads = fleet.s3.client().list_multipart_uploads(Bucket="releases").get("Uploads", [])
        if uploads:
            problems.append(f"incomplete uploads: {[u['Key'] for u in uploads]}")
    problems += our_processes(work)
    return problems


def drill(args: argparse.Namespace, work: pathlib.Path) -> None:
    s3 = store(work / "s3")
    fleet = Fleet(work / "fleet", args.hosts, args.vms, args.mib, bare_python(work / "bare"), s3)
    fleet.read_limit_mbps = args.read_limit_mbps
    try:
        fleet.set_faults()
        first = fleet.run(str(work / "first.log"), Run(inject=True))
        found, counts = summaries(first["text"]), recap(first["text"])
        exported = sum(len(s["exported"]) + len(s["already_current"]) for s in found.values())
        failed = [f"{name}: {line}" for name, s in found.items() for line in s["failed"]]
        unreachable = [name for name, c in counts.items() if c.get("unreachable")]
        print(f"faults: {'; '.join(fleet.log)}")
        print(f"first run: {first['seconds']:.0f} s, {exported} VMs exported or current, {len(failed)} failed, "
              f"unreachable: {unreachable}; controller peak RSS {first['peak_rss'] / MiB:.0f} MiB per process, "
              f"{first['peak_total'] / MiB:.0f} MiB in all")
        for line in failed:
            print(f"  failed: {line}")
        time.sleep(2)  # async wrappers exit right after writing their result
        problems = check_whole(fleet, work, every_ova=False)
        fleet.remove_faults()
        second = fleet.run(str(work / "second.log"))
        again = {name: len(s["exported"]) for name, s in summaries(second["text"]).items() if s["exported"]}
        print(f"second run: {second['seconds']:.0f} s, exit {second['code']}, exported again: {again}")
        # the slowest single host, alone, on the same data: a host without faults exporting every VM again
        slowest = next(host for host in fleet.hosts if host.fault is None and not host.s3)
        alone = fleet.run(str(work / "alone.log"), Run(forks=1, limit=slowest.name, force=True))
        print(f"one host alone ({slowest.name}, {args.vms} VMs, forced): {alone['seconds']:.0f} s; the fleet of "
              f"{args.hosts}: {first['seconds']:.0f} s with the faults (60 s of them an SSH cut), "
              f"{alone['seconds'] and first['seconds'] / alone['seconds']:.1f}x")
        print("state after the drill: " + ("whole" if not problems else "; ".join(problems)))
    finally:
        fleet.close()
        s3.close()


def soak(args: argparse.Namespace, work: pathlib.Path) -> None:
    s3 = store(work / "s3")
    fleet = Fleet(work / "fleet", args.hosts, args.vms, args.mib, bare_python(work / "bare"), s3)
    fleet.read_limit_mbps = args.read_limit_mbps
    rng = random.Random(args.seed)
    bad = 0
    try:
        clean = fleet.run(str(work / "clean-0.log"))
        print(f"first run: exit {clean['code']}, {clean['seconds']:.0f} s", flush=True)
        for number in range(1, args.runs + 1):
            for host in fleet.hosts:
                for vmx in host.vms:
                    os.utime(vmx.replace(".vmx", ".vmdk"))  # every OVA is stale: all export again
            when = rng.uniform(1.0, clean["seconds"])
            how = rng.choice([signal.SIGTERM, signal.SIGKILL])
            killed = fleet.run(str(work / f"killed-{number}.log"), Run(kill=(when, how)))
            clean = fleet.run(str(work / f"clean-{number}.log"))
            time.sleep(2)
            problems = check_whole(fleet, work)
            counts = recap(clean["text"])
            if clean["code"] != 0 or any(c.get("failed") or c.get("unreachable") for c in counts.values()):
                problems.append(f"the clean run failed (exit {clean['code']})")
            bad += bool(problems)
            print(f"run {number}: {how.name} at {when:.1f} s (exit {killed['code']}); clean run "
                  f"{clean['seconds']:.0f} s: {'whole' if not problems else '; '.join(problems)}", flush=True)
        print(f"soak: {args.runs} killed runs, {args.runs - bad} left a whole state after the clean run")
    finally:
        fleet.close()
        s3.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["drill", "soak"])
    parser.add_argument("--hosts", type=int, default=12)
    parser.add_argument("--vms", type=int, default=3)
    parser.add_argument("--mib", type=int, default=16, help="MiB of data on each VM's disk")
    parser.add_argument("--read-limit-mbps", type=float, default=2.0,
                        help="each export's read limit, so that the faults land mid-export (default 2)")
    parser.add_argument("--runs", type=int, default=30, help="soak: killed runs")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--workdir", help="where the fleet lives (default: a temporary folder)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the drill needs root (sshd on loopback, a small tmpfs)")
    # stopped with SIGTERM, it still stops its servers (the ``finally`` blocks run)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"stopped by signal {signum}"))
    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="ovatool-fleet-"))
    work.mkdir(parents=True, exist_ok=True)
    (drill if args.what == "drill" else soak)(args, work)


if __name__ == "__main__":
    main()
