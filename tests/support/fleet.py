# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A fleet fault drill (issue 21): ``export_all.yml`` over many sshd test hosts on loopback, each with its own VM
folder and vmrun double, some with a standard-library-only Python, some exporting straight into S3, while
faults strike at once:

- ``full``: the host's output folder is a small tmpfs that fills up mid-export;
- ``cut``: the host's SSH server and sessions die for ``cut_seconds`` mid-export;
- ``corrupt``: one VM's grain table points past the end of its disk file;
- ``down``: the host is unreachable from the start (its sshd is not running);
- ``locked``: one VM is already being exported by another run (which holds its lock);
- the S3 server goes away for ``s3_outage`` seconds while the S3 hosts upload.

Used by tests/reliability/test_fleet.py (12 hosts, 3 small VMs each) and, bigger, by
tests/benchmarks/fleet_drill.py. ``remove_faults`` takes them away for the run after.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from support import doubles, servers, vmfactory
from support.ansiblerun import BIN, ROOT, ansible_env
from support.sources import patch, sparse_layout

FAULTS = ("full", "cut", "corrupt", "locked", "down")


@dataclass
class Run:
    """How Fleet.run runs the playbook."""
    inject: bool = False  # the SSH cut and the S3 outage strike while it runs
    forks: int = 12
    limit: str = ""  # one host only
    force: bool = False  # export every VM again
    kill: Optional[Tuple[float, int]] = None  # (seconds, signal) sent to ansible-playbook
    timeout: float = 1500


class Host:
    def __init__(self, fleet: "Fleet", index: int) -> None:
        self.name = f"h{index:02d}"
        self.root = fleet.folder / self.name
        self.fault = FAULTS[index - 4] if 4 <= index < 4 + len(FAULTS) else None
        self.s3 = fleet.s3 is not None and index <= fleet.s3_hosts
        # every other host runs a Python with the standard library only (an ESXi-like host)
        self.python = fleet.bare_python if fleet.bare_python and index % 2 else sys.executable
        self.vms: List[str] = []
        for number in range(1, fleet.vms + 1):
            vmx = vmfactory.noise_vm(str(self.root / "vms" / f"vm{number}"), f"{self.name}-vm{number}", fleet.mib)
            self.vms.append(vmx)
        tools = self.root / "bin"
        tools.mkdir(parents=True)
        doubles.install(tools, "vmrun")
        self.vmrun = str(tools / "vmrun")
        self.power = tools / "vmrun-state.json"
        self.power.write_text(json.dumps({"running": [self.vms[0]]}))  # the first VM runs, the others are off
        self.out = self.root / "ova"
        self.out.mkdir()
        self.state = self.root / "state"
        self.remote_tmp = self.root / "remote-tmp"
        self.sshd = servers.Sshd(str(self.root / "sshd"))

    @property
    def dest(self) -> str:
        return f"s3://releases/{self.name}/" if self.s3 else str(self.out)

    def inventory(self, fleet: "Fleet") -> Dict[str, object]:
        entry = {"ansible_host": "127.0.0.1", "ansible_port": self.sshd.port, "ansible_user": "root",
                 "ansible_ssh_private_key_file": self.sshd.client_key, "ansible_python_interpreter": self.python,
                 "ansible_remote_tmp": str(self.remote_tmp), "ovatool_vms": self.vms,
                 "ovatool_output_dir": self.dest, "ovatool_state_dir": str(self.state),
                 "ovatool_vmrun_path": self.vmrun, "ovatool_accelerator_dir": str(self.root / "work"),
                 # the S3 hosts read slower, so that they all upload when the store goes away, and the cut host
                 # slower still, so that its exports run when its SSH is cut
                 "ovatool_read_limit_mbps": fleet.read_limit_mbps / (2 if self.s3 else 4 if self.fault == "cut" else 1),
                 "ovatool_accelerator": False}
        if self.s3:
            entry["ovatool_output_options"] = {"endpoint_url": fleet.s3.endpoint, "access_key": servers.S3_ACCESS,
                                               "secret_key": servers.S3_SECRET, "region": "us-east-1",
                                               "part_size_mb": 5}
        return entry

    def running(self) -> List[str]:
        return json.loads(self.power.read_text())["running"]

    def power_calls(self) -> List[list]:
        return [call for call in json.loads(self.power.read_text()).get("calls", []) if call[0] != "list"]


class Fleet:
    def __init__(self, folder, hosts: int = 12, vms: int = 3, mib: int = 3, bare_python: Optional[str] = None,
                 s3: Optional[servers.SeaweedS3] = None) -> None:
        self.folder = folder
        self.vms = vms
        self.mib = mib
        self.bare_python = bare_python
        self.s3 = s3
        self.s3_hosts = 3 if hosts >= 8 else 1  # the drill's three; one in a small fleet (the soak)
        self.read_limit_mbps = 0.4  # each VM takes seconds: the faults land mid-export
        self.cut_seconds = 60
        self.s3_outage = 30
        self.hosts = [Host(self, index) for index in range(1, hosts + 1)]
        self.by_fault = {host.fault: host for host in self.hosts if host.fault}
        self.mounted = False
        self.holder: Optional[subprocess.Popen] = None
        self.release = self.folder / "release-the-lock"
        self.log: List[str] = []
        self.rss = 0

    # -- the faults ------------------------------------------------------------------------------------------
    def set_faults(self) -> None:
        full = self.by_fault["full"]
        # room for about one and a half OVAs: the second export that writes there runs out of space
        size = int(self.mib * 1.5 * 1024)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}k", "tmpfs", str(full.out)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"cannot mount a small tmpfs ({done.stderr.strip()}): the drill needs root")
        self.mounted = True
        vmdk = self.by_fault["corrupt"].vms[1].replace(".vmx", ".vmdk")
        gt_sector, table = sparse_layout(vmdk)[1:]
        slot = next(i for i, entry in enumerate(table) if entry)
        patch(vmdk, gt_sector * 512 + slot * 4, struct.pack("<I", (os.path.getsize(vmdk) // 512) + 4096))
        self.by_fault["down"].sshd.close()
        # another run holds the lock of the locked host's second VM until this run's export of it has started
        # and waited a while (then it lets go, as a run that finished would): that export must wait for it
        locked = self.by_fault["locked"]
        self.release = locked.root / "release-the-lock"
        code = ("import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
                "fcntl.flock(fd, fcntl.LOCK_EX)\nos.write(fd, str(os.getpid()).encode())\n"
                "while not os.path.exists(sys.argv[2]):\n    time.sleep(0.1)\n")
        self.holder = subprocess.Popen([sys.executable, "-c", code, str(locked.out / f".{locked.name}-vm2.ova.lock"),
                                        str(self.release)])
        deadline = time.monotonic() + 30
        while not servers.holders(str(locked.out / f".{locked.name}-vm2.ova.lock")) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _release_ready(self) -> Callable[[], bool]:
        """This run's export of the locked VM has been waiting for the lock for 10 s."""
        locked = self.by_fault["locked"]
        progress = locked.state / f".{locked.name}-vm2.vmx.progress.json"
        seen: List[float] = []

        def ready() -> bool:
            if progress.exists() and not seen:
                seen.append(time.monotonic())
            return bool(seen) and time.monotonic() - seen[0] > 10

        return ready

    def remove_faults(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,size=256m", str(self.by_fault["full"].out)], check=True)
        corrupt = self.by_fault["corrupt"]
        folder = os.path.dirname(corrupt.vms[1])
        shutil.rmtree(folder)
        vmfactory.noise_vm(folder, f"{corrupt.name}-vm2", self.mib)
        self.by_fault["down"].sshd.start()
        if self.holder is not None:
            self.release.touch()
            self.holder.wait(60)

    def _strike(self, play: subprocess.Popen, ready: Callable[[], bool], what: str, server) -> None:
        """Once ``ready()``, take ``server`` away (its ``drop`` or ``pause``) for ``seconds`` (``what`` names it)."""
        seconds = self.cut_seconds if hasattr(server, "drop") else self.s3_outage
        while play.poll() is None:
            if ready():
                (server.drop if hasattr(server, "drop") else server.pause)()
                self.log.append(f"{what} for {seconds} s")
                time.sleep(seconds)
                server.start()
                return
            time.sleep(0.2)

    def _let_go(self, play: subprocess.Popen) -> None:
        ready = self._release_ready()
        while play.poll() is None and not ready():
            time.sleep(0.2)
        self.release.touch()
        self.log.append(f"{self.by_fault['locked'].name}: the other run let go of the lock")

    def _cut_ready(self, log_path: str) -> Callable[[], bool]:
        """The run waits for the cut host's exports (which read slowly, so they are still running)."""
        host = self.by_fault["cut"]

        def ready() -> bool:
            with open(log_path) as handle:
                waiting = "TASK [ovatool.vmware.export : Wait for the exports" in handle.read()
            return waiting and host.state.is_dir() and any(
                n.endswith(".progress.json") for n in os.listdir(str(host.state)))

        return ready

    def _s3_ready(self) -> Callable[[], bool]:
        """Every S3 host is uploading (past the controller's planning)."""
        client = self.s3.client()
        wanted = {host.name for host in self.hosts if host.s3}
        return lambda: wanted <= {upload["Key"].split("/")[0]
                                  for upload in client.list_multipart_uploads(Bucket="releases").get("Uploads") or []}

    # -- running ---------------------------------------------------------------------------------------------
    def run(self, log_path: str, how: Optional["Run"] = None) -> Dict[str, object]:
        """One run of the playbook (``how``: faults injected while it runs, forks, one host only, forced, killed
        at a moment). Returns its exit code, output, wall time and the controller's peak RSS."""
        how = how or Run()
        inventory = {"all": {"hosts": {host.name: host.inventory(self) for host in self.hosts}, "vars": {
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ovatool_poll_seconds": 2, "ovatool_progress_seconds": 60, "ovatool_force": how.force}}}
        path = self.folder / "inventory.json"
        path.write_text(json.dumps(inventory))
        env = ansible_env(self.folder)
        env["ANSIBLE_TIMEOUT"] = "10"
        argv = [os.path.join(BIN, "ansible-playbook"), "-i", str(path), "-f", str(how.forks), "playbooks/export_all.yml"]
        began = time.monotonic()
        with open(log_path, "w") as handle:
            play = subprocess.Popen(argv + (["-l", how.limit] if how.limit else []), cwd=ROOT, env=env,
                                    stdout=handle, stderr=subprocess.STDOUT)
        rss = servers.PeakRss(play.pid)
        injectors = []
        if how.inject:
            cut = self.by_fault["cut"]
            injectors.append(threading.Thread(target=self._strike, daemon=True, args=(
                play, self._cut_ready(log_path), f"{cut.name}: SSH cut", cut.sshd)))
            if self.s3 is not None:
                injectors.append(threading.Thread(target=self._strike, daemon=True, args=(
                    play, self._s3_ready(), "S3 away", self.s3)))
            injectors.append(threading.Thread(target=self._let_go, args=(play,), daemon=True))
        if how.kill:
            injectors.append(threading.Timer(how.kill[0], lambda: play.poll() is None and play.send_signal(how.kill[1])))
        for thread in injectors:
            thread.start()
        try:
            code = play.wait(how.timeout)
        finally:
            if play.poll() is None:
                play.kill()
                play.wait()
        seconds = time.monotonic() - began
        for thread in injectors:
            thread.join(120)
        peak = rss.stop()
        with open(log_path) as handle:
            text = handle.read()
        return {"code": code, "text": text, "seconds": seconds, "peak_rss": peak, "peak_total": rss.peak_total}

    def close(self) -> None:
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait()
        for host in self.hosts:
            host.sshd.close()
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.by_fault["full"].out)], check=False)


def summaries(text: str) -> Dict[str, dict]:
    """The Summary task's message of each host (exported, already_current, failed, powered_back_on)."""
    start = text.rfind("TASK [Summary]")
    found = {}
    if start < 0:
        return found
    decoder = json.JSONDecoder()
    for match in re.finditer(r"ok: \[(h\d+)\] => ", text[start:]):
        found[match.group(1)] = decoder.raw_decode(text[start + match.end():])[0]["msg"]
    return found


def recap(text: str) -> Dict[str, Dict[str, int]]:
    """PLAY RECAP counts per host."""
    return {m.group(1): {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
            for m in re.finditer(r"^(h\d+)\s*:\s*(.*)$", text[text.rfind("PLAY RECAP"):], re.M)}


def our_processes(folder) -> List[str]:
    """Processes (other than the test servers: sshd, SeaweedFS) whose command line names the drill's folder:
    exports, modules, the playbook's workers."""
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if str(folder) in argv and not servers.command_name(int(entry)).startswith(("sshd", "weed")):
            left.append(f"{entry}: {argv[:200]}")
    return left
