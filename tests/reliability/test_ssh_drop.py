# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The SSH connection to a hypervisor drops in the middle of an export (real sshd on loopback, killed with its
sessions; the export on the host is held with SIGSTOP so the drop lands mid-export every time).

- a short drop: the async export goes on, ova_export_wait reconnects and the same run finishes everything;
- a long drop: the run reports the host unreachable, naming the job; the export goes on; the next run, started
  while it still writes, waits for it instead of writing the OVA twice, uploads it, and powers the VM that the
  first run stopped back on (from the note the first run left on the host).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from support import doubles, ovacheck, servers, vmfactory
from support.ansiblerun import BIN, ROOT, ansible_env

pytestmark = [pytest.mark.reliability, pytest.mark.xdist_group(name="servers")]

# the host side runs the standard library's zlib (no ISA-L): level 9 on random data takes seconds
HOST_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


@pytest.fixture()
def host(tmp_path):
    if shutil.which("ssh") is None:
        pytest.fail("the ssh client is not installed (openssh-client)", pytrace=False)
    sshd = servers.Sshd(str(tmp_path / "sshd"))
    vmdk = None
    try:
        vmx = vmfactory.noise_vm(str(tmp_path / "vms" / "slow"))
        tools = tmp_path / "bin"
        tools.mkdir()
        doubles.install(tools, "vmrun")
        (tools / "vmrun-state.json").write_text(json.dumps({"running": [vmx]}))
        (tmp_path / "shelf").mkdir()
        vmdk = os.path.join(os.path.dirname(vmx), "slow.vmdk")
        yield {"sshd": sshd, "vmx": vmx, "vmdk": vmdk,
               "vmrun": str(tools / "vmrun"), "state": tools / "vmrun-state.json", "out": tmp_path / "ova"}
    finally:
        sshd.close()
        # whatever happened in the test, no export it held with SIGSTOP stays behind
        left = async_exports(vmdk) if vmdk else []
        signal_all(left, signal.SIGCONT)
        signal_all(left, signal.SIGKILL)


def start_play(tmp_path, host, reconnect: int, log: str) -> subprocess.Popen:
    inventory = {"all": {"hosts": {"hv": {
        "ansible_host": "127.0.0.1", "ansible_port": host["sshd"].port, "ansible_user": "root",
        "ansible_ssh_private_key_file": host["sshd"].client_key, "ansible_python_interpreter": HOST_PYTHON,
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ovatool_vms": [host["vmx"]], "ovatool_output_dir": str(host["out"]), "ovatool_vmrun_path": host["vmrun"],
        "ovatool_compression": "max", "ovatool_threads": 1, "ovatool_poll_seconds": 1,
        "ovatool_progress_seconds": 0, "ovatool_reconnect_seconds": reconnect,
        "ovatool_upload_dest": f"file://{tmp_path}/shelf/"}}}}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    with open(log, "w") as handle:
        return subprocess.Popen([os.path.join(BIN, "ansible-playbook"), "-i", str(path), "playbooks/export_all.yml"],
                                stdout=handle, stderr=subprocess.STDOUT, env=ansible_env(tmp_path), cwd=ROOT)


def wait_for(what, condition, timeout: float = 120.0, proc=None, log: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            tail = read(log)[-4000:] if log else ""
            pytest.fail(f"the playbook ended (exit code {proc.returncode}) before {what}\n{tail}", pytrace=False)
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}", pytrace=False)


def async_exports(vmdk: str) -> list:
    """The exports running as Ansible async jobs that read ``vmdk`` (not the plan's check-mode look at it)."""
    found = []
    for pid in servers.holders(vmdk):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{parent}/cmdline", "rb") as handle:
                if b"async_wrapper" in handle.read():
                    found.append(pid)
        except (OSError, IndexError, ValueError):
            continue
    return found


def flock_pids(waiting: bool) -> set:
    """Processes holding a flock() lock, or (``waiting``) asleep in flock() for one that another process holds.
    The kernel lists them in /proc/locks as ``N: FLOCK ADVISORY WRITE <pid> ...`` and, for waiters,
    ``N: -> FLOCK ADVISORY WRITE <pid> ...``."""
    pids = set()
    with open("/proc/locks") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > 1 and fields[1] == "->":
                if waiting and len(fields) > 5 and fields[2] == "FLOCK":
                    pids.add(int(fields[5]))
            elif not waiting and len(fields) > 4 and fields[1] == "FLOCK":
                pids.add(int(fields[4]))
    return pids


def signal_all(pids, signum) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def read(log: str) -> str:
    with open(log, errors="replace") as handle:
        return handle.read()


def check_result(tmp_path, host) -> None:
    """The OVA arrived bit-exact, nothing partial or stray is left, the VM runs again as before."""
    shelf = tmp_path / "shelf"
    assert os.listdir(str(shelf)) == ["Slow.ova"]
    raw = tmp_path / "source.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", host["vmdk"], str(raw)], check=True)
    ovacheck.assert_same_disk(str(raw), ovacheck.extract(str(shelf / "Slow.ova"), "Slow-disk1.vmdk", str(tmp_path)))
    assert sorted(os.listdir(str(host["out"]))) == [".Slow.ova.source", "Slow.ova"], "no partial, lock or note"
    state = json.loads(host["state"].read_text())
    assert state["running"] == [host["vmx"]], "the VM is running again"


def drop_mid_export(tmp_path, host, reconnect: int, log: str):
    """Start export_all.yml; once the export runs on the host and holds its destination's lock, hold it
    (SIGSTOP) and drop SSH. Returns the playbook process and the export's pids (still stopped).

    The export opens the disks before it takes the lock: stopped in between, it would hold no lock and a
    second run's export would not wait for it."""
    play = start_play(tmp_path, host, reconnect=reconnect, log=log)

    def locked_export():
        export = async_exports(host["vmdk"])
        return export if set(export) & flock_pids(waiting=False) else None

    try:
        export = wait_for("the export on the host to take its lock", locked_export, proc=play, log=log)
    except BaseException:
        play.kill()
        play.wait()
        raise
    signal_all(export, signal.SIGSTOP)
    host["sshd"].drop()
    return play, export


def release_and_finish(play, export, log: str, first) -> str:
    """Run ``first``, let the held export go on, and wait for the playbook to succeed; returns its output."""
    try:
        first()
        signal_all(export, signal.SIGCONT)
        assert play.wait(600) == 0, read(log)
    finally:
        signal_all(export, signal.SIGCONT)
        play.kill()
        play.wait()
    return read(log)


def test_short_drop_the_same_run_finishes(tmp_path, host):
    log = str(tmp_path / "play.log")
    play, export = drop_mid_export(tmp_path, host, 120, log)

    def reconnect_then():
        wait_for("the lost connection", lambda: "lost the connection" in read(log), proc=play, log=log)
        host["sshd"].start()

    out = release_and_finish(play, export, log, reconnect_then)
    assert "the exports go on on the host" in out and "connection back after" in out, out
    assert re.search(r"hv \| .*slow\.vmx: exported to .*Slow\.ova", out), out
    check_result(tmp_path, host)


def test_long_drop_reported_and_the_next_run_recovers(tmp_path, host):
    log = str(tmp_path / "first.log")
    play, export = drop_mid_export(tmp_path, host, 2, log)
    try:
        play.wait(300)
    finally:
        if play.poll() is None:
            signal_all(export, signal.SIGCONT)
        play.kill()
        play.wait()
    out = read(log)
    assert play.returncode != 0
    assert re.search(r"hv\s*:\s*ok=\d+\s+changed=\d+\s+unreachable=1", out), out
    assert "they go on on the host (async job ids" in out and "run again to pick up" in out, out
    assert all(os.path.exists(f"/proc/{pid}") for pid in export), "the export went on without the connection"
    assert json.loads(host["state"].read_text())["running"] == [], "the first run stopped the VM"
    assert [n for n in os.listdir(str(host["out"])) if n.startswith(".power-")], "and noted it was running"

    host["sshd"].start()
    log = str(tmp_path / "second.log")
    play = start_play(tmp_path, host, reconnect=120, log=log)

    def second_export_waits():
        # the second run's export opens the disk too, then waits on the first one's lock: release the first
        # only once the kernel shows the second asleep on that lock (it has warned by then)
        wait_for("the second export to wait for the first one's lock",
                 lambda: (set(async_exports(host["vmdk"])) - set(export)) & flock_pids(waiting=True),
                 timeout=300, proc=play, log=log)

    out = release_and_finish(play, export, log, second_export_waits)
    assert re.search(r"\[WARNING\]: hv \| .*slow\.vmx: another export of .*Slow\.ova is running \(process \d+\); "
                     r"waiting for it to finish", out), out
    assert re.search(r'"already_current": \[\s*"[^"]*slow\.vmx"', out), "the summary says the OVA was there"
    assert re.search(r"hv\s*:\s*ok=\d+\s+changed=\d+\s+unreachable=0\s+failed=0", out), out
    calls = json.loads(host["state"].read_text())["calls"]
    assert sum(1 for call in calls if call[:2] == ["start", host["vmx"]]) == 1
    check_result(tmp_path, host)
