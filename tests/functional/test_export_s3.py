# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ova_export straight into S3: the host is a Python with the standard library only (as on ESXi), the S3 server
(SeaweedFS) checks real credentials that stay on the controller, nothing is staged on the host's disk, and the
object is byte for byte the OVA a local export writes. Faults (SIGTERM, kill -9 of everything) leave nothing."""
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

from support import doubles, servers, vmfactory
from support.ansiblerun import (ROOT, export_all, host_files, play_task, return_doc, task_play, task_result,
                                undocumented)

pytestmark = pytest.mark.xdist_group(name="servers")

MiB = 1024 * 1024
CREDENTIALS = {"endpoint_url": None, "access_key": servers.S3_ACCESS, "secret_key": servers.S3_SECRET,
               "region": "us-east-1"}


def twin_vm(folder: str) -> str:
    """Two disks of random data (incompressible: the OVA spans several 5 MiB parts and the second disk's header
    lands in a later part than the first's)."""
    vmx = vmfactory.noise_vm(folder, "Twin", mib=14)
    raw = os.path.join(folder, "second.raw")
    with open(raw, "wb") as handle:
        for _mib in range(9):
            handle.write(os.urandom(MiB))
    vmfactory.convert(raw, os.path.join(folder, "second.vmdk"), "monolithicSparse")
    os.unlink(raw)
    return vmfactory.write_vmx(vmx, "Twin", [("scsi0:0", "twin.vmdk"), ("scsi0:1", "second.vmdk")])


def local_export(vmx: str, folder: str, **options) -> bytes:
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm

    os.makedirs(folder)
    result = export_vm(ExportOptions(src=vmx, dest=folder + "/", **options))
    with open(result["dest"], "rb") as handle:
        return handle.read()


def uploads(s3) -> list:
    return s3.client().list_multipart_uploads(Bucket="releases").get("Uploads", [])


def export_task(s3, vmx: str, dest: str, **extra) -> dict:
    return {"ovatool.vmware.ova_export": dict(CREDENTIALS, endpoint_url=s3.endpoint, src=vmx, dest=dest,
                                              codec="zlib", part_size_mb=5, **extra)}


def test_export_to_s3_is_the_local_export_and_idempotent(s3_auth, tmp_path, bare_python):
    vmx = twin_vm(str(tmp_path / "vm"))
    task = export_task(s3_auth, vmx, "s3://releases/appliances/", refresh=True)
    first = play_task(tmp_path, bare_python, task)
    assert first.returncode == 0, first.stdout
    result = task_result(first)
    assert undocumented(result, return_doc("ovatool.vmware.ova_export")) == []
    assert result["changed"] is True and result["dest"] == "s3://releases/appliances/Twin.ova", result
    assert result["parts"] >= 4, "the OVA spans several parts"
    # memory: the parts held, at most (threads + 1) x 5 MiB plus the two 8 MiB parts with a hole
    assert 0 < result["upload_peak_bytes"] <= 5 * 5 * MiB + 2 * 8 * MiB, result["upload_peak_bytes"]

    client = s3_auth.client()
    got = client.get_object(Bucket="releases", Key="appliances/Twin.ova")
    assert got["Metadata"]["ovatool-fingerprint"] == result["fingerprint"]
    local = local_export(vmx, str(tmp_path / "local"), codec="zlib")
    assert got["Body"].read() == local, "the object is byte for byte the local export"
    assert uploads(s3_auth) == []
    reached = host_files(tmp_path)
    assert b"X-Amz-Signature" in reached, "the kept host files hold the presigned URLs (the search is meaningful)"
    assert servers.S3_SECRET.encode() not in reached and servers.S3_SECRET not in first.stdout
    assert not [n for n in os.listdir(str(tmp_path / "vm")) if n.endswith((".ova", ".partial"))], "nothing staged"

    again = play_task(tmp_path, bare_python, task)
    assert again.returncode == 0, again.stdout
    assert task_result(again)["changed"] is False and task_result(again)["current"] is True
    task["ovatool.vmware.ova_export"]["refresh"] = False
    kept = play_task(tmp_path, bare_python, task)
    assert task_result(kept)["changed"] is False and "exists; use force" in task_result(kept)["msg"]
    os.utime(vmx)  # the VM changed: the object is stale
    task["ovatool.vmware.ova_export"]["refresh"] = True
    stale = play_task(tmp_path, bare_python, task)
    assert task_result(stale)["changed"] is True and task_result(stale)["stale"] is True, stale.stdout


def test_verify_reads_an_s3_ova_where_it_lies(s3_auth, tmp_path, bare_python):
    """ova_verify on s3:// from a stdlib-only host: the same findings as on the local file, good or damaged."""
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.verify import verify

    vmx = twin_vm(str(tmp_path / "vm"))
    good = local_export(vmx, str(tmp_path / "local"))
    bad = bytearray(good)
    bad[len(bad) * 3 // 4] ^= 0xFF  # inside the second disk's grains
    (tmp_path / "bad.ova").write_bytes(bytes(bad))
    client = s3_auth.client()
    client.put_object(Bucket="releases", Key="checked/good.ova", Body=good)
    client.put_object(Bucket="releases", Key="checked/bad.ova", Body=bytes(bad))
    for name, expect_ok in (("good", True), ("bad", False)):
        done = play_task(tmp_path, bare_python, {"ovatool.vmware.ova_verify": dict(
            CREDENTIALS, endpoint_url=s3_auth.endpoint, path=f"s3://releases/checked/{name}.ova", deep=True)})
        result = task_result(done)
        assert undocumented(result, return_doc("ovatool.vmware.ova_verify")) == []
        assert result["ok"] is expect_ok and (done.returncode == 0) is expect_ok, done.stdout
        assert result["path"] == f"s3://releases/checked/{name}.ova"
        if name == "good":
            (tmp_path / "good.ova").write_bytes(good)
        local = verify(str(tmp_path / f"{name}.ova"), deep=True)
        assert result["problems"] == local["problems"] and result["digests_checked"] == local["digests_checked"]
        assert result["disks"] == local["disks"]
    assert "differs from the manifest" in " ".join(result["problems"]), result["problems"]
    reached = host_files(tmp_path)
    assert b"X-Amz-Signature" in reached and servers.S3_SECRET.encode() not in reached
    assert not [n for n in os.listdir(str(tmp_path / "host-tmp")) if n.endswith(".ova")], "no local copy"


def test_without_the_controller_an_s3_dest_is_refused(tmp_path):
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OutputError
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm

    vmx = vmfactory.noise_vm(str(tmp_path / "vm"), "Lone", mib=1)
    with pytest.raises(OutputError, match="written through the controller"):
        export_vm(ExportOptions(src=vmx, dest="s3://releases/x/"))


def exporting(s3, vmdk: str, play: subprocess.Popen, log) -> int:
    """The module process writing into an upload: it holds the disk open once the upload exists."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        holders = servers.holders(vmdk)
        if holders and uploads(s3):
            return holders[0]
        if play.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"no export into an upload showed up:\n{log.read_text()[-3000:]}", pytrace=False)


@pytest.mark.parametrize("images", [[], ["qcow2", "raw"]], ids=["ova", "ova-and-images"])
def test_sigterm_aborts_and_a_killed_run_is_cleaned_by_the_next(s3_auth, tmp_path, bare_python, images):
    """With images, every object of the set is an upload of its own: SIGTERM aborts them all, and after kill -9
    the next run aborts each one left."""
    vmx = vmfactory.noise_vm(str(tmp_path / "vm"), "Slow", mib=32)
    vmdk = os.path.join(str(tmp_path / "vm"), "slow.vmdk")
    # slow on purpose (4 MB/s read limit): the signals land mid-export
    prefix = "faults-images/" if images else "faults/"  # the store is the module's: each case has its own prefix
    task = export_task(s3_auth, vmx, f"s3://releases/{prefix}", read_limit_mbps=4, images=images)
    keys = [f"{prefix}Slow.ova"] + [f"{prefix}Slow-disk1.{image}" for image in images] + \
        ([f"{prefix}Slow.SHA256SUMS"] if images else [])
    argv, env = task_play(tmp_path, bare_python, task)
    log = tmp_path / "play.log"

    def start() -> subprocess.Popen:
        with open(log, "w") as handle:
            return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    play = start()
    try:
        os.kill(exporting(s3_auth, vmdk, play, log), signal.SIGTERM)
        assert play.wait(120) != 0
    finally:
        play.kill()
        play.wait()
    assert "stopped by signal" in log.read_text() or "interrupted" in log.read_text(), log.read_text()[-3000:]
    client = s3_auth.client()
    assert uploads(s3_auth) == [] and client.list_objects_v2(Bucket="releases", Prefix=prefix)["KeyCount"] == 0

    # controller and host gone at once (kill -9): the upload stays, and the next run aborts it first
    play = start()
    try:
        module = exporting(s3_auth, vmdk, play, log)
        # every process of the run, the controller first (its action plugin, in a worker process of its own
        # session, would abort the upload when it saw the module die): frozen, then killed
        run = [play.pid] + servers.descendants(play.pid)[::-1]
        assert module in run
        for signum in (signal.SIGSTOP, signal.SIGKILL):
            for pid in run:
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass
    finally:
        play.kill()
        play.wait()
    left = uploads(s3_auth)
    assert sorted(u["Key"] for u in left) == sorted(keys), "kill -9 left the uploads (the next run must find them)"
    task["ovatool.vmware.ova_export"]["read_limit_mbps"] = 0
    done = play_task(tmp_path, bare_python, task)
    assert done.returncode == 0, done.stdout
    for key in keys:
        assert f"aborted an incomplete upload to s3://releases/{key}" in done.stdout, key
    assert uploads(s3_auth) == []
    assert client.head_object(Bucket="releases", Key=keys[0])["ContentLength"] == task_result(done)["size"]
    assert sorted(o["Key"] for o in client.list_objects_v2(Bucket="releases", Prefix=prefix)["Contents"]) == \
        sorted(keys)


def test_export_all_straight_to_s3_from_a_stdlib_host(s3_auth, tmp_path, bare_python):
    """The playbook with ``ovatool_output_dir: s3://``: power off, export into S3 with progress, power back on;
    nothing staged on the host, the secret only on the controller, a second run changes nothing."""
    vmx = vmfactory.noise_vm(str(tmp_path / "vms" / "edge"), "Edge", mib=12)
    tools = tmp_path / "bin"
    tools.mkdir()
    doubles.install(tools, "vmrun")
    (tools / "vmrun-state.json").write_text(json.dumps({"running": [vmx]}))
    extra = {"ovatool_vms": [vmx], "ovatool_output_dir": "s3://releases/direct/",
             "ovatool_state_dir": str(tmp_path / "state"), "ovatool_vmrun_path": str(tools / "vmrun"),
             "ovatool_progress_seconds": 0, "ovatool_poll_seconds": 1, "ovatool_accelerator": False,
             # 3600 is also a figure of the results: no option holding it may be no_log as a whole (issue 29)
             "ovatool_output_options": dict(CREDENTIALS, endpoint_url=s3_auth.endpoint, part_size_mb=5,
                                            presign_seconds=3600)}
    done = export_all(tmp_path, bare_python, extra)
    assert done.returncode == 0, done.stdout
    assert re.search(r"Edge: exported to s3://releases/direct/Edge\.ova in [\d.]+ s", done.stdout), done.stdout
    client = s3_auth.client()
    got = client.get_object(Bucket="releases", Key="direct/Edge.ova")
    assert got["Body"].read() == local_export(vmx, str(tmp_path / "local"), codec="zlib")  # the host has only zlib
    assert uploads(s3_auth) == []
    reached = host_files(tmp_path)
    assert b"X-Amz-Signature" in reached and servers.S3_SECRET.encode() not in reached
    assert servers.S3_SECRET not in done.stdout
    assert json.loads((tools / "vmrun-state.json").read_text())["running"] == [vmx], "powered back on"
    assert re.search(r"TASK \[ovatool\.vmware\.verify : Verify the OVAs\][^\n]*\nok: \[localhost\] => "
                     r"\(item=s3://releases/direct/Edge\.ova\)", done.stdout), "verified where it lies"
    assert not [n for n in os.listdir(str(tmp_path / "state")) if not n.startswith(".")], "nothing staged"

    again = export_all(tmp_path, bare_python, extra)
    assert again.returncode == 0, again.stdout
    assert re.search(r'"already_current": \[\s*"[^"]*edge\.vmx"', again.stdout), again.stdout
    calls = json.loads((tools / "vmrun-state.json").read_text())["calls"]
    assert sum(1 for call in calls if call[0] == "stop") == 1, "the second run did not stop the VM"


def test_the_command_exports_straight_to_s3(s3_auth, tmp_path):
    """``ovatool export ... -o s3://``: the command is both sides (boto3's credential chain, the presigned parts)."""
    ovatool = shutil.which("ovatool", path=os.path.dirname(sys.executable))
    if ovatool is None:
        pytest.fail("the ovatool command is not installed (scripts/test.sh runs pip install .)", pytrace=False)
    vmx = vmfactory.noise_vm(str(tmp_path / "vm"), "Cmd", mib=7)
    env = dict(os.environ, AWS_ACCESS_KEY_ID=servers.S3_ACCESS, AWS_SECRET_ACCESS_KEY=servers.S3_SECRET)
    argv = [ovatool, "export", vmx, "-o", "s3://releases/cli/", "--endpoint-url", s3_auth.endpoint,
            "--region", "us-east-1", "--part-size-mb", "5", "--codec", "zlib", "--refresh"]
    first = subprocess.run(argv + ["--json"], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["dest"] == "s3://releases/cli/Cmd.ova"
    body = s3_auth.client().get_object(Bucket="releases", Key="cli/Cmd.ova")["Body"].read()
    assert body == local_export(vmx, str(tmp_path / "local"), codec="zlib")
    again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0 and "is current" in again.stdout, again.stdout + again.stderr
    wrong = subprocess.run(argv + ["--force"], env=dict(env, AWS_SECRET_ACCESS_KEY="wrong"), capture_output=True,
                           text=True, timeout=300, check=False)
    assert wrong.returncode == 1 and wrong.stderr.startswith("ovatool: error: S3 export to s3://releases/cli/Cmd.ova "
                                                             "failed"), wrong.stderr
    assert "Traceback" not in wrong.stderr and uploads(s3_auth) == []


def _part_arrived(s3) -> bool:
    client = s3.client()
    return any(client.list_parts(Bucket="releases", Key=u["Key"], UploadId=u["UploadId"]).get("Parts")
               for u in uploads(s3))


@pytest.mark.parametrize("retry_seconds, outage", [(900, 60), (8, 25)])
def test_an_outage_of_the_store_mid_export(s3_auth, tmp_path, bare_python, retry_seconds, outage):
    """The store goes away for ``outage`` seconds after the first part arrived. Within the window the export
    rides it out and the object is the local export byte for byte; past it the export fails saying so, and the
    next run (the store back) aborts the upload left behind and exports."""
    vmx = vmfactory.noise_vm(str(tmp_path / "vm"), "Outage", mib=24)
    vmdk = os.path.join(str(tmp_path / "vm"), "outage.vmdk")
    progress = tmp_path / "progress.json"
    task = export_task(s3_auth, vmx, "s3://releases/outage/", read_limit_mbps=2, retry_seconds=retry_seconds,
                       refresh=True, progress_file=str(progress))
    argv, env = task_play(tmp_path, bare_python, task)
    log = tmp_path / "play.log"
    with open(log, "w") as handle:
        play = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        exporting(s3_auth, vmdk, play, log)
        deadline = time.monotonic() + 60
        while not _part_arrived(s3_auth):
            assert time.monotonic() < deadline and play.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        s3_auth.pause()
        try:
            look = min(outage, retry_seconds) / 2  # while the export still waits
            time.sleep(look)
            # what an operator watching the job sees (ova_export_wait prints the progress file's note)
            seen = json.loads(progress.read_text())
            time.sleep(outage - look)
        finally:
            s3_auth.start()
        code = play.wait(300)
    finally:
        play.kill()
        play.wait()
    text = log.read_text()
    assert re.fullmatch(r"object store unreachable since \d+ s, retrying for up to \d+ s", seen.get("note", "")), seen
    if retry_seconds > outage:
        assert code == 0, text[-3000:]
    else:
        assert code != 0 and "has not answered for" in text and "retry_seconds 8" in text, text[-3000:]
        again = play_task(tmp_path, bare_python, export_task(s3_auth, vmx, "s3://releases/outage/", refresh=True))
        assert again.returncode == 0, again.stdout[-3000:]
    got = s3_auth.client().get_object(Bucket="releases", Key="outage/Outage.ova")["Body"].read()
    assert got == local_export(vmx, str(tmp_path / "local"), codec="zlib")
    assert uploads(s3_auth) == []


def test_an_async_export_outlives_its_60_s_urls(s3_auth, tmp_path, bare_python):
    """``presign_seconds: 60`` and a read limit that makes the export last about three minutes: ova_export_wait
    renews the URLs (the parts not sent yet, complete and abort) and the export completes, byte for byte the local
    export. The URLs the host started with are refused by the store afterwards: without the renewal, it could not
    have finished."""
    vmx = vmfactory.noise_vm(str(tmp_path / "vms" / "long"), "Long", mib=24)
    extra = {"ovatool_vms": [vmx], "ovatool_output_dir": "s3://releases/long/",
             "ovatool_state_dir": str(tmp_path / "state"), "ovatool_manage_power": False,
             "ovatool_progress_seconds": 30, "ovatool_poll_seconds": 1, "ovatool_accelerator": False,
             "ovatool_read_limit_mbps": 0.14,
             "ovatool_output_options": dict(CREDENTIALS, endpoint_url=s3_auth.endpoint, part_size_mb=5,
                                            presign_seconds=60)}
    began = time.monotonic()
    done = export_all(tmp_path, bare_python, extra, timeout=900)
    took = time.monotonic() - began
    assert done.returncode == 0, done.stdout[-5000:]
    renewals = re.findall(r"Long: renewed the upload's URLs \((\d+) parts\) for (\d+) s", done.stdout)
    assert len(renewals) >= 3 and all(55 <= int(seconds) <= 60 for _parts, seconds in renewals), done.stdout[-5000:]
    assert took > 150, f"the export took {took:.0f} s: too short to outlive its URLs"
    got = s3_auth.client().get_object(Bucket="releases", Key="long/Long.ova")["Body"].read()
    assert got == local_export(vmx, str(tmp_path / "local"), codec="zlib")
    assert uploads(s3_auth) == []
    assert not [n for n in os.listdir(str(tmp_path / "state")) if n.endswith(".urls.json")], "renewal file left"
    # the store refuses the URLs the export started with (they reached the host in the module's arguments)
    reached = host_files(tmp_path).decode("utf-8", "replace").replace("\\u0026", "&")
    first = [url for url in re.findall(r"http://127\.0\.0\.1:\d+/releases/long/Long\.ova\?[^\"\s]*", reached)
             if "partNumber=" in url and "X-Amz-Expires=60" in url]  # a part's (a PUT)
    assert first, "the first URLs are not in the host's files"
    import urllib.error
    import urllib.request
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(first[0], data=b"x" * 16, method="PUT"), timeout=30)
    assert refused.value.code == 403 and b"expired" in refused.value.read(), "the store took an expired URL"


def test_a_synchronous_export_that_cannot_end_before_its_urls_fails_first(s3_auth, tmp_path, bare_python):
    vmx = vmfactory.noise_vm(str(tmp_path / "vm"), "Short", mib=8)
    done = play_task(tmp_path, bare_python, export_task(s3_auth, vmx, "s3://releases/short/", presign_seconds=60,
                                                        read_limit_mbps=0.05))
    result = task_result(done)
    assert done.returncode != 0 and "live 60 s" in result["msg"] and "asynchronously" in result["msg"], done.stdout
    assert uploads(s3_auth) == []
    assert s3util_keys(s3_auth, "short/") == []


def s3util_keys(s3, prefix: str) -> list:
    return [o["Key"] for o in s3.client().list_objects_v2(Bucket="releases", Prefix=prefix).get("Contents", [])]


IMAGES = ["qcow2", "vhdx", "vhd", "raw"]


def local_set(vmx: str, folder: str, **options) -> dict:
    """The files a local export with images writes: name -> bytes."""
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm

    os.makedirs(folder)
    result = export_vm(ExportOptions(src=vmx, dest=folder + "/", **options))
    found = {}
    for path in result["files"]:
        with open(path, "rb") as handle:
            found[os.path.basename(path)] = handle.read()
    return found


def test_images_stream_into_objects_of_their_own(s3_auth, tmp_path, bare_python):
    """OVA, qcow2, VHDX, VHD, raw and the sums from one read on a stdlib host, each its own object, byte for byte
    the files a local export writes; the sums are right for the objects; a second run finds the set current."""
    vmx = vmfactory.noise_vm(str(tmp_path / "vm"), "Imaged", mib=9)
    task = export_task(s3_auth, vmx, "s3://releases/images/", refresh=True, images=IMAGES)
    first = play_task(tmp_path, bare_python, task)
    assert first.returncode == 0, first.stdout
    result = task_result(first)
    assert undocumented(result, return_doc("ovatool.vmware.ova_export")) == []
    assert [image["path"] for image in result["images"]] == [f"s3://releases/images/Imaged-disk1.{f}" for f in IMAGES]
    assert result["sums"] == "s3://releases/images/Imaged.SHA256SUMS"
    client = s3_auth.client()
    objects = {}
    for key in [o["Key"] for o in client.list_objects_v2(Bucket="releases", Prefix="images/")["Contents"]]:
        got = client.get_object(Bucket="releases", Key=key)
        assert got["Metadata"]["ovatool-fingerprint"] == result["fingerprint"], key
        objects[key.split("/", 1)[1]] = got["Body"].read()
    local = local_set(vmx, str(tmp_path / "local"), codec="zlib", images=IMAGES)
    assert sorted(objects) == sorted(local)
    for name, data in local.items():
        assert objects[name] == data, f"{name} differs from the local export"
    # the sums are right for what arrived: check them against the downloaded objects
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    for name, data in objects.items():
        (shelf / name).write_bytes(data)
    check = subprocess.run(["sha256sum", "--strict", "-c", "Imaged.SHA256SUMS"], cwd=str(shelf),
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0 and check.stdout.count(": OK") == 5, check.stdout + check.stderr
    assert uploads(s3_auth) == []
    again = play_task(tmp_path, bare_python, task)
    assert task_result(again)["changed"] is False and task_result(again)["current"] is True, again.stdout
    client.delete_object(Bucket="releases", Key="images/Imaged-disk1.vhdx")  # a member gone: the set is stale
    third = play_task(tmp_path, bare_python, task)
    assert task_result(third)["changed"] is True and task_result(third)["stale"] is True, third.stdout
    assert client.get_object(Bucket="releases", Key="images/Imaged-disk1.vhdx")["Body"].read() == \
        local["Imaged-disk1.vhdx"]


def test_export_all_with_images_into_s3(s3_auth, tmp_path, bare_python):
    """The playbook (asynchronous exports) with ``ovatool_images`` and an s3:// output: every object of the set."""
    vmx = vmfactory.noise_vm(str(tmp_path / "vms" / "pack"), "Pack", mib=7)
    extra = {"ovatool_vms": [vmx], "ovatool_output_dir": "s3://releases/pack/", "ovatool_manage_power": False,
             "ovatool_state_dir": str(tmp_path / "state"), "ovatool_images": ["qcow2", "vhd"],
             "ovatool_progress_seconds": 0, "ovatool_poll_seconds": 1, "ovatool_accelerator": False,
             "ovatool_output_options": dict(CREDENTIALS, endpoint_url=s3_auth.endpoint, part_size_mb=5)}
    done = export_all(tmp_path, bare_python, extra)
    assert done.returncode == 0, done.stdout
    client = s3_auth.client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="releases", Prefix="pack/")["Contents"])
    assert keys == ["pack/Pack-disk1.qcow2", "pack/Pack-disk1.vhd", "pack/Pack.SHA256SUMS", "pack/Pack.ova"]
    local = local_set(vmx, str(tmp_path / "local"), codec="zlib", images=["qcow2", "vhd"])
    for key in keys:
        assert client.get_object(Bucket="releases", Key=key)["Body"].read() == local[key.split("/")[1]], key
    assert uploads(s3_auth) == []
    assert not [n for n in os.listdir(str(tmp_path / "state")) if not n.startswith(".")], "nothing staged"
