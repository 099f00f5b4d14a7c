# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""S3 uploads run from the controller: the host is a Python with the standard library only (as on ESXi), the
S3 server checks real credentials, and the secret key must never reach the host."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

from support import doubles, servers
from support.ansiblerun import ROOT, export_all, host_files, play_task, task_play, task_result

pytestmark = pytest.mark.xdist_group(name="servers")

ACCESS, SECRET = servers.S3_ACCESS, servers.S3_SECRET
MiB = 1024 * 1024


def test_stdlib_host_uploads_with_presigned_parts(s3_auth, tmp_path, bare_python):
    payload = tmp_path / "appliance.ova"
    with open(payload, "wb") as handle:
        seed = b"ovatool"
        for _block in range(13 * MiB // 65536 + 1):  # three 5 MiB parts, the last one short
            seed = hashlib.sha256(seed).digest()
            handle.write(seed * 2048)
    task = {"ovatool.vmware.ova_upload": {"src": str(payload), "dest": "s3://releases/1.4/", "part_size_mb": 5,
                                          "endpoint_url": s3_auth.endpoint, "access_key": ACCESS, "secret_key": SECRET,
                                          "region": "us-east-1"}}
    first = play_task(tmp_path, bare_python, task)
    assert first.returncode == 0, first.stdout
    result = task_result(first)
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    assert result["via"] == "controller" and result["changed"] is True and result["sha256"] == digest, result
    assert result["url"] == "s3://releases/1.4/appliance.ova"
    client = s3_auth.client()
    head = client.head_object(Bucket="releases", Key="1.4/appliance.ova")
    assert head["Metadata"]["sha256"] == digest and head["ContentLength"] == payload.stat().st_size
    assert head["ETag"].strip('"').endswith("-3"), "three parts"
    back = tmp_path / "back.ova"
    client.download_file("releases", "1.4/appliance.ova", str(back))
    assert back.read_bytes() == payload.read_bytes()
    assert client.list_multipart_uploads(Bucket="releases").get("Uploads", []) == []
    # what reached the host: the module and its arguments, kept; presigned URLs, never the secret
    reached = host_files(tmp_path)
    assert b"X-Amz-Signature" in reached, "the kept host files hold the presigned URLs (the search is meaningful)"
    assert SECRET.encode() not in reached and SECRET not in first.stdout

    again = play_task(tmp_path, bare_python, task)
    assert again.returncode == 0 and task_result(again)["changed"] is False, again.stdout


def test_an_upload_outlives_its_urls(s3_auth, tmp_path, bare_python):
    """``presign_seconds: 10`` and a 2 MB/s uplink: six 5 MiB parts one at a time take about 16 s, longer than
    their URLs live (the fifth would start after they end). The host stops starting parts at three quarters of
    the lifetime, the controller signs the rest again, and the object arrives whole."""
    payload = tmp_path / "long.ova"
    payload.write_bytes(os.urandom(30 * MiB))
    with servers.SlowUplink(s3_auth.port, 2 * 1000 * 1000) as uplink:
        task = {"ovatool.vmware.ova_upload": {"src": str(payload), "dest": "s3://releases/long/", "part_size_mb": 5,
                                              "threads": 1, "presign_seconds": 10, "endpoint_url": uplink.endpoint,
                                              "access_key": ACCESS, "secret_key": SECRET, "region": "us-east-1"}}
        began = time.monotonic()
        done = play_task(tmp_path, bare_python, task)
        took = time.monotonic() - began
    assert done.returncode == 0, done.stdout[-3000:]
    result = task_result(done)
    assert result["via"] == "controller" and result["renewals"] >= 1, result
    assert took > 14, f"the upload took {took:.0f} s: not longer than its URLs"
    assert "X-Amz-Expires=10" in host_files(tmp_path).decode("utf-8", "replace"), "the URLs did not live 10 s"
    client = s3_auth.client()
    assert client.get_object(Bucket="releases", Key="long/long.ova")["Body"].read() == payload.read_bytes()
    assert client.list_multipart_uploads(Bucket="releases").get("Uploads", []) == []


def test_host_mode_needs_boto3_on_the_host(s3_auth, tmp_path, bare_python):
    payload = tmp_path / "x.ova"
    payload.write_bytes(b"x" * 1024)
    done = play_task(tmp_path, bare_python, {"ovatool.vmware.ova_upload": {
        "src": str(payload), "dest": "s3://releases/x.ova", "via": "host", "endpoint_url": s3_auth.endpoint}})
    assert done.returncode != 0 and "Failed to import the required Python library (boto3)" in done.stdout


def test_wrong_secret_is_refused_and_leaves_no_upload(s3_auth, tmp_path, bare_python):
    payload = tmp_path / "y.ova"
    payload.write_bytes(os.urandom(64 * 1024))
    done = play_task(tmp_path, bare_python, {"ovatool.vmware.ova_upload": {
        "src": str(payload), "dest": "s3://releases/y.ova", "endpoint_url": s3_auth.endpoint, "access_key": ACCESS,
        "secret_key": "not-the-secret", "region": "us-east-1"}})
    assert done.returncode != 0 and "S3 upload failed" in done.stdout, done.stdout
    assert s3_auth.client().list_multipart_uploads(Bucket="releases").get("Uploads", []) == []


def edge_vm(tmp_path, images) -> tuple:
    """A running VM under tmp_path/vms and its vmrun double: (vmx, the double's folder)."""
    from support import vmfactory

    folder = tmp_path / "vms" / "edge"
    folder.mkdir(parents=True)
    vmfactory.convert(images["odd"], str(folder / "edge.vmdk"), "monolithicSparse")
    vmx = vmfactory.write_vmx(str(folder / "edge.vmx"), "Edge", [("scsi0:0", "edge.vmdk")])
    tools = tmp_path / "bin"
    tools.mkdir()
    doubles.install(tools, "vmrun")
    (tools / "vmrun-state.json").write_text(json.dumps({"running": [vmx]}))
    return vmx, tools


def test_export_all_from_a_stdlib_host_to_s3(s3_auth, tmp_path, bare_python, images):
    """The whole playbook with an ESXi-like host Python (standard library only): export, verify, then upload to S3
    with the credentials only on the controller."""
    vmx, tools = edge_vm(tmp_path, images)
    extra = {"ovatool_vm_search_paths": [str(tmp_path / "vms")], "ovatool_output_dir": str(tmp_path / "ovas"),
             "ovatool_vmrun_path": str(tools / "vmrun"), "ovatool_upload_dest": "s3://releases/esxi/",
             "ovatool_upload_options": {"endpoint_url": s3_auth.endpoint, "access_key": ACCESS, "secret_key": SECRET,
                                        "region": "us-east-1"}}
    done = export_all(tmp_path, bare_python, extra)
    assert done.returncode == 0, done.stdout
    local = tmp_path / "ovas" / "Edge.ova"
    head = s3_auth.client().head_object(Bucket="releases", Key="esxi/Edge.ova")
    assert head["Metadata"]["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
    reached = host_files(tmp_path)
    assert b"X-Amz-Signature" in reached and SECRET.encode() not in reached
    assert json.loads((tools / "vmrun-state.json").read_text())["running"] == [vmx], "powered back on"


def test_export_all_from_a_stdlib_host_to_sftp(tmp_path, bare_python, images):
    """The whole playbook from an ESXi-like host to SFTP: the host has no paramiko, the controller relays with its
    own key, which never reaches the host."""
    pytest.importorskip("paramiko")
    vmx, tools = edge_vm(tmp_path, images)
    sshd = servers.Sshd(str(tmp_path / "sshd"))
    try:
        shelf = tmp_path / "shelf" / "esxi"
        extra = {"ovatool_vms": [vmx], "ovatool_output_dir": str(tmp_path / "ovas"),
                 "ovatool_vmrun_path": str(tools / "vmrun"),
                 "ovatool_upload_dest": f"sftp://root@127.0.0.1:{sshd.port}{shelf}/",
                 "ovatool_upload_options": {"private_key": sshd.client_key, "known_hosts": sshd.known_hosts}}
        done = export_all(tmp_path, bare_python, extra)
        assert done.returncode == 0, done.stdout
        local = tmp_path / "ovas" / "Edge.ova"
        assert (shelf / "Edge.ova").read_bytes() == local.read_bytes()
        with open(sshd.client_key, "rb") as handle:
            key = handle.read().split(b"\n")[1]  # a line of the private key's body
        assert key not in host_files(tmp_path), "the SFTP key stayed on the controller"
        assert json.loads((tools / "vmrun-state.json").read_text())["running"] == [vmx], "powered back on"
    finally:
        sshd.close()


def test_a_failed_part_aborts_the_upload(s3_auth, tmp_path):
    """The controller's side against the real server, with the host replaced by one that sends the first part
    for real and then fails: the upload is aborted, no object and no incomplete upload remain."""
    from types import SimpleNamespace

    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    from ansible_collections.ovatool.vmware.plugins.module_utils.specs import UPLOAD, controller_view
    from ansible_collections.ovatool.vmware.plugins.action.ova_upload import ActionModule
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.presigned import put_parts

    payload = tmp_path / "z.ova"
    payload.write_bytes(os.urandom(11 * MiB))
    calls = []

    def host(args, _task_vars):
        calls.append(args)
        if "parts" not in args:
            return {"size": payload.stat().st_size, "sha256": hashlib.sha256(payload.read_bytes()).hexdigest()}
        put_parts(str(payload), args["parts"][:1])  # one part arrives, then the host goes away
        return {"failed": True, "msg": "connection to the host lost"}

    action = ActionModule.__new__(ActionModule)
    action._task = SimpleNamespace(check_mode=False)  # pylint: disable=protected-access
    action._host = host  # pylint: disable=protected-access
    args = {"src": str(payload), "dest": "s3://releases/aborted/z.ova", "part_size_mb": 5,
            "endpoint_url": s3_auth.endpoint, "access_key": ACCESS, "secret_key": SECRET, "region": "us-east-1"}
    # as task_args() hands them over: validated against ova_upload's spec, with its defaults
    args = ArgumentSpecValidator(controller_view(UPLOAD)).validate(args).validated_parameters
    result = action._s3(args, {}, {})  # pylint: disable=protected-access
    assert result["failed"] and "connection to the host lost" in result["msg"], result
    assert len(calls) == 2 and len(calls[1]["parts"]) == 3
    client = s3_auth.client()
    assert client.list_multipart_uploads(Bucket="releases").get("Uploads", []) == []
    assert client.list_objects_v2(Bucket="releases", Prefix="aborted/").get("KeyCount") == 0


def test_sftp_from_a_host_without_paramiko_is_relayed_by_the_controller(tmp_path, bare_python):
    """The host's Python has no paramiko: the controller reads the file from it in chunks and writes it to a real
    sshd's SFTP, streamed: its memory stays far below the file's size, nothing is staged on its disk."""
    pytest.importorskip("paramiko")
    sshd = servers.Sshd(str(tmp_path / "sshd"))
    try:
        payload = tmp_path / "big.ova"
        with open(payload, "wb") as handle:
            for _block in range(40):  # 160 MiB of random data
                handle.write(os.urandom(4 * MiB))
        target = tmp_path / "landed" / "big.ova"
        task = {"ovatool.vmware.ova_upload": {
            "src": str(payload), "dest": f"sftp://root@127.0.0.1:{sshd.port}{target}",
            "private_key": sshd.client_key, "known_hosts": sshd.known_hosts}}
        argv, env = task_play(tmp_path, bare_python, task)
        env["TMPDIR"] = str(tmp_path / "controller-tmp")  # where anything staged on the controller would land
        os.makedirs(env["TMPDIR"])
        with open(tmp_path / "play.log", "w") as log:
            play = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak = servers.PeakRss(play.pid)
        returncode = play.wait(300)
        peak_rss = peak.stop()
        out = (tmp_path / "play.log").read_text()
        assert returncode == 0, out
        result = task_result(subprocess.CompletedProcess(argv, 0, out))
        assert result["via"] == "controller" and result["changed"] is True, result
        assert hashlib.sha256(target.read_bytes()).hexdigest() == result["sha256"] == \
            hashlib.sha256(payload.read_bytes()).hexdigest()
        # the controller's processes: Ansible itself (~70 MiB) and one chunk (8 MiB, base64 and decoded)
        assert 0 < peak_rss < 160 * MiB * 0.8, f"peak RSS {peak_rss / MiB:.0f} MiB"
        staged = [name for _base, _dirs, names in os.walk(env["TMPDIR"]) for name in names
                  if os.path.getsize(os.path.join(_base, name)) > MiB]
        assert staged == [], "nothing staged on the controller"
        assert not [n for n in os.listdir(str(target.parent)) if n.endswith(".partial")]

        again = play_task(tmp_path, bare_python, task)
        assert again.returncode == 0 and task_result(again)["changed"] is False, again.stdout
        # the host with paramiko uploads by itself (auto), as before
        itself = play_task(tmp_path, sys.executable, task)
        assert task_result(itself)["via"] == "host", itself.stdout
    finally:
        sshd.close()
