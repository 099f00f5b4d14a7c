# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet drill (issue 21): export_all.yml with 12 forks against 12 sshd hosts of 3 VMs each (every other one
with a standard-library-only Python, three exporting straight into S3) while, at once, one host's destination
fills up, one host's SSH is cut for 60 s, one VM's grain table points past its file, one host is down, one VM
is being exported by another run, and the S3 server goes away for 30 s (tests/support/fleet.py).

The summary names each failed VM with its host and reason and counts every other VM; every OVA verifies;
running VMs run again; nothing partial, no lock, no incomplete upload, no process of ours is left; the run
after the faults are gone exports only what failed and changes nothing else."""
from __future__ import annotations

import os
import shutil

import pytest

from support import ovacheck
from support.fleet import Fleet, Run, our_processes, recap, summaries

pytestmark = pytest.mark.reliability  # its own servers (s3_auth is per module): free to run beside the others

LEFTOVERS = (".partial", ".lock", ".tmp", ".progress.json", ".urls.json")


def ova_name(vmx: str) -> str:
    """h04-vm2.ova for .../h04/vms/vm2/h04-vm2.vmx (the VM's display name is its file's)."""
    return os.path.basename(vmx)[:-len(".vmx")] + ".ova"


def check_clean(fleet: Fleet, tmp_path) -> None:
    for host in fleet.hosts:
        for folder in (host.out, host.state):
            if folder.is_dir():
                left = [n for n in os.listdir(str(folder)) if n.endswith(LEFTOVERS)]
                assert left == [], f"{host.name}: {left} left in {folder}"
    assert fleet.s3.client().list_multipart_uploads(Bucket="releases").get("Uploads", []) == []
    assert our_processes(tmp_path) == []


def exported_names(summary: dict) -> set:
    return {os.path.basename(dest) for dest in summary["exported"]}


def test_a_fleet_rides_out_six_faults_at_once(tmp_path, bare_python, s3_auth):
    if shutil.which("ssh") is None or os.geteuid() != 0:
        pytest.skip("the drill needs the ssh client and root (a small tmpfs for the host whose disk fills up)")
    fleet = Fleet(tmp_path, hosts=12, vms=3, mib=3, bare_python=bare_python, s3=s3_auth)
    try:
        fleet.set_faults()
        first = fleet.run(str(tmp_path / "first.log"), Run(inject=True))
        text = first["text"]
        struck = " ".join(fleet.log)
        assert "SSH cut" in struck and "S3 away" in struck and "let go of the lock" in struck, fleet.log
        found, counts = summaries(text), recap(text)
        down = fleet.by_fault["down"]
        assert counts[down.name]["unreachable"] == 1 and down.name not in found, text[-4000:]
        failed_before = {}
        for host in fleet.hosts:
            if host is down:
                continue
            summary = found[host.name]
            failed = dict(line.split(": ", 1) for line in summary["failed"])
            failed_before[host.name] = set(failed)
            if host.fault == "full":
                assert failed and all("space" in why.lower() for why in failed.values()), (host.name, failed)
            elif host.fault == "corrupt":
                assert set(failed) == {host.vms[1]} and "past the end" in failed[host.vms[1]], failed
            else:
                assert failed == {}, (host.name, failed, text[-4000:])
            done = exported_names(summary) | {ova_name(vmx) for vmx in summary["already_current"]}
            every = {ova_name(vmx) for vmx in host.vms}
            assert done | {ova_name(vmx) for vmx in failed} == every, (host.name, summary)
            assert counts[host.name]["failed"] == (1 if failed else 0) and counts[host.name]["unreachable"] == 0
            assert host.running() == [host.vms[0]], f"{host.name}: the running VM does not run again"
            for name in done:
                if host.s3:
                    body = fleet.s3.client().get_object(Bucket="releases", Key=f"{host.name}/{name}")["Body"]
                    path = tmp_path / f"{host.name}-{name}"
                    path.write_bytes(body.read())
                    ovacheck.read_ova(str(path))
                    path.unlink()
                else:
                    ovacheck.read_ova(str(host.out / name))
        cut = fleet.by_fault["cut"]
        assert f"[WARNING]: {cut.name}: lost the connection" in text and f"{cut.name}: connection back" in text
        assert "another export of" in text, "the locked VM's export said it waited for the other run"
        check_clean(fleet, tmp_path)
        print(f"\nfleet drill, 12 hosts x 3 VMs, faults: {'; '.join(fleet.log)}: {first['seconds']:.0f} s; "
              f"controller peak RSS {first['peak_rss'] / 2**20:.0f} MiB per process, "
              f"{first['peak_total'] / 2**20:.0f} MiB in all")

        fleet.remove_faults()
        calls_before = {host.name: len(host.power_calls()) for host in fleet.hosts}
        second = fleet.run(str(tmp_path / "second.log"))
        assert second["code"] == 0, second["text"][-4000:]
        found = summaries(second["text"])
        for host in fleet.hosts:
            again = exported_names(found[host.name])
            wanted = {ova_name(vmx) for vmx in (host.vms if host is down else failed_before[host.name])}
            assert again == wanted, (host.name, again, wanted)
            if not again:
                assert len(host.power_calls()) == calls_before[host.name], f"{host.name}: power touched again"
            assert host.running() == [host.vms[0]]
        check_clean(fleet, tmp_path)
    finally:
        fleet.close()
