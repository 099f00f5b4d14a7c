# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ova_upload against real servers on loopback: SeaweedFS (S3), OpenSSH (SFTP), an HTTP PUT server."""
from __future__ import annotations

import hashlib
import os

import pytest

from support import servers
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.upload import UploadOptions, upload
from support.ansiblerun import adhoc

MiB = 1024 * 1024
pytestmark = pytest.mark.xdist_group(name="servers")  # one SeaweedFS and one sshd for the whole module


@pytest.fixture(scope="module")
def payload(tmp_path_factory):
    """A 23 MiB file (several 5 MiB multipart parts, a ragged last one) with varied content."""
    path = tmp_path_factory.mktemp("payload") / "appliance.ova"
    seed = hashlib.sha256(b"ovatool").digest()
    with open(path, "wb") as handle:
        for i in range(23 * MiB // 4096 + 3):
            seed = hashlib.sha256(seed + i.to_bytes(4, "little")).digest()
            handle.write(seed * 128)
    return str(path)


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    pytest.importorskip("boto3")
    server = servers.SeaweedS3(str(tmp_path_factory.mktemp("seaweed")))
    try:
        server.make_bucket("appliances")
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    pytest.importorskip("paramiko")
    server = servers.Sshd(str(tmp_path_factory.mktemp("sshd")))
    yield server
    server.close()


@pytest.fixture()
def put_server(tmp_path):
    server = servers.PutServer(str(tmp_path / "http-store"))
    yield server
    server.close()


def test_s3_multipart_upload_is_bit_exact_and_idempotent(s3, payload, tmp_path):
    options = dict(src=payload, dest="s3://appliances/2026/appliance.ova", endpoint_url=s3.endpoint,
                   access_key="test", secret_key="test", region="us-east-1", part_size_mb=5, threads=4)
    result = upload(UploadOptions(**options))
    assert result["changed"] and result["size"] == os.path.getsize(payload) and result["sha256"] == sha256(payload)
    client = s3.client()
    head = client.head_object(Bucket="appliances", Key="2026/appliance.ova")
    assert head["Metadata"]["sha256"] == sha256(payload)
    assert "-" in head["ETag"], "a multipart upload was expected"
    back = tmp_path / "back.ova"
    client.download_file("appliances", "2026/appliance.ova", str(back))
    assert sha256(str(back)) == sha256(payload)
    assert upload(UploadOptions(**options))["changed"] is False
    assert upload(UploadOptions(force=True, **options))["changed"] is True


def test_s3_errors_are_readable(s3, payload):
    with pytest.raises(OvatoolError, match="S3 upload failed"):
        upload(UploadOptions(src=payload, dest="s3://no-such-bucket/x.ova", endpoint_url=s3.endpoint,
                             access_key="test", secret_key="test", region="us-east-1"))
    with pytest.raises(OvatoolError, match="s3://bucket/key"):
        upload(UploadOptions(src=payload, dest="s3://appliances", endpoint_url=s3.endpoint))


@pytest.mark.parametrize("prefix, key", [("s3://appliances/", "appliance.ova"),
                                         ("s3://appliances/new/prefix/", "new/prefix/appliance.ova")])
def test_s3_prefix_gets_the_file_name(s3, payload, prefix, key):
    result = upload(UploadOptions(src=payload, dest=prefix, endpoint_url=s3.endpoint, access_key="test",
                                  secret_key="test", region="us-east-1", part_size_mb=5))
    assert result["changed"] and result["url"] == f"s3://appliances/{key}", result
    assert s3.client().head_object(Bucket="appliances", Key=key)["Metadata"]["sha256"] == sha256(payload)


def test_sftp_upload_with_key_and_known_hosts(sshd, payload, tmp_path):
    target = tmp_path / "sftp-dest" / "appliance.ova"
    target.parent.mkdir()
    options = dict(src=payload, dest=f"sftp://root@127.0.0.1:{sshd.port}{target}", private_key=sshd.client_key,
                   known_hosts=sshd.known_hosts)
    result = upload(UploadOptions(**options))
    assert result["changed"] and sha256(str(target)) == sha256(payload)
    assert os.listdir(str(target.parent)) == ["appliance.ova"], "a temporary file was left"
    assert upload(UploadOptions(**options))["changed"] is False


def test_sftp_folder_dest_is_created_and_gets_the_file_name(sshd, payload, tmp_path):
    folder = tmp_path / "sftp-new" / "2026" / "12"
    options = dict(src=payload, dest=f"sftp://root@127.0.0.1:{sshd.port}{folder}/", private_key=sshd.client_key,
                   known_hosts=sshd.known_hosts)
    result = upload(UploadOptions(**options))
    assert result["url"].endswith(f"{folder}/appliance.ova") and sha256(str(folder / "appliance.ova")) == sha256(payload)
    assert os.listdir(str(folder)) == ["appliance.ova"]
    assert upload(UploadOptions(**options))["changed"] is False
    named = tmp_path / "sftp-named" / "deeper" / "renamed.ova"
    options["dest"] = f"sftp://root@127.0.0.1:{sshd.port}{named}"
    upload(UploadOptions(**options))
    assert sha256(str(named)) == sha256(payload)


def test_sftp_unknown_host_key_is_refused(sshd, payload, tmp_path):
    with pytest.raises(OvatoolError, match="SFTP connection failed"):
        upload(UploadOptions(src=payload, dest=f"sftp://root@127.0.0.1:{sshd.port}{tmp_path}/x.ova",
                             private_key=sshd.client_key))


def test_http_put_streams_with_checksum(put_server, payload):
    dest = f"{put_server.url}/artifactory/appliances/appliance.ova"
    result = upload(UploadOptions(src=payload, dest=dest, url_username="ci", url_password="s3cret"))
    assert result["changed"] and put_server.handler.puts == 1
    stored = os.path.join(put_server.folder, "artifactory_appliances_appliance.ova")
    assert sha256(stored) == sha256(payload)
    assert "s3cret" not in str(result)
    assert upload(UploadOptions(src=payload, dest=dest))["changed"] is False
    assert put_server.handler.puts == 1


def test_file_destination(payload, tmp_path):
    dest = tmp_path / "shelf" / "appliance.ova"
    dest.parent.mkdir()
    result = upload(UploadOptions(src=payload, dest=f"file://{dest}"))
    assert result["changed"] and sha256(str(dest)) == sha256(payload)
    assert sorted(os.listdir(str(dest.parent))) == ["appliance.ova"]
    assert upload(UploadOptions(src=payload, dest=f"file://{dest}"))["changed"] is False
    with pytest.raises(OvatoolError, match="unsupported destination"):
        upload(UploadOptions(src=payload, dest="ftp://example.invalid/x"))
    with pytest.raises(OvatoolError, match="is a folder: end it in /"):
        upload(UploadOptions(src=payload, dest=f"file://{dest.parent}"))


def test_file_folder_dest_is_created_and_gets_the_file_name(payload, tmp_path):
    folder = tmp_path / "new" / "shelf"
    result = upload(UploadOptions(src=payload, dest=f"file://{folder}/"))
    assert result["url"] == f"file://{folder}/appliance.ova" and sha256(str(folder / "appliance.ova")) == sha256(payload)
    assert upload(UploadOptions(src=payload, dest=f"file://{folder}/"))["changed"] is False
    named = tmp_path / "other" / "renamed.ova"
    upload(UploadOptions(src=payload, dest=f"file://{named}"))
    assert sha256(str(named)) == sha256(payload)


def test_http_prefix_gets_the_file_name(put_server, payload):
    result = upload(UploadOptions(src=payload, dest=f"{put_server.url}/repo/"))
    assert result["url"] == f"{put_server.url}/repo/appliance.ova"
    assert sha256(os.path.join(put_server.folder, "repo_appliance.ova")) == sha256(payload)


def test_ova_upload_module_hides_secrets(s3, payload, tmp_path):
    args = {"src": payload, "dest": "s3://appliances/module/appliance.ova", "endpoint_url": s3.endpoint,
            "access_key": "test", "secret_key": "very-secret-value", "region": "us-east-1", "part_size_mb": 5}
    result = adhoc(tmp_path, "ovatool.vmware.ova_upload", args)
    assert result["_rc"] == 0 and result["changed"] is True, result["_stdout"]
    assert "very-secret-value" not in result["_stdout"] and result["sha256"] == sha256(payload)
    check = adhoc(tmp_path, "ovatool.vmware.ova_upload", args, check=True)
    assert check["changed"] is False


@pytest.mark.parametrize("dest,library", [("s3://bucket/x.ova", "boto3"), ("sftp://u@127.0.0.1/tmp/x.ova", "paramiko")])
def test_missing_library_message(payload, tmp_path, dest, library, bare_python):
    """On a host whose Python lacks boto3/paramiko, uploading from the host: Ansible's standard missing_required_lib
    message. (S3 from the controller, the default where it has boto3, is in test_upload_controller.py.)"""
    result = adhoc(tmp_path, "ovatool.vmware.ova_upload", {"src": payload, "dest": dest, "via": "host"},
                   python=bare_python)
    assert result["_rc"] != 0 and f"Failed to import the required Python library ({library})" in result["msg"]


def test_s3_upload_interrupted_by_a_dead_server(tmp_path):
    """The server dies mid-upload: a clear error, no object that looks complete; after a restart, a retry works."""
    pytest.importorskip("boto3")
    import subprocess
    import sys
    import time

    big = tmp_path / "big.ova"
    with open(big, "wb") as handle:
        for _mib in range(160):
            handle.write(os.urandom(1024 * 1024))
    server = servers.SeaweedS3(str(tmp_path / "weed"))
    try:
        server.make_bucket("crash")
        script = ("import sys;"
                  "from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.upload import *;"
                  "upload(UploadOptions(src=sys.argv[1], dest='s3://crash/big.ova', endpoint_url=sys.argv[2],"
                  " access_key='test', secret_key='test', region='us-east-1', part_size_mb=5, threads=1))")
        proc = subprocess.Popen([sys.executable, "-c", script, str(big), server.endpoint],  # pylint: disable=consider-using-with
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        client = server.client()
        deadline = time.monotonic() + 60
        while not client.list_multipart_uploads(Bucket="crash").get("Uploads"):
            assert proc.poll() is None and time.monotonic() < deadline, "the upload never started"
            time.sleep(0.05)
        server.kill()
        err = proc.communicate(timeout=300)[1].decode()
        assert proc.returncode != 0 and "S3 upload failed" in err, err[-800:]
        server.start()
        client = server.client()
        with pytest.raises(Exception) as missing:
            client.head_object(Bucket="crash", Key="big.ova")
        assert "404" in str(missing.value) or "Not Found" in str(missing.value)
        result = upload(UploadOptions(src=str(big), dest="s3://crash/big.ova", endpoint_url=server.endpoint,
                                      access_key="test", secret_key="test", region="us-east-1", part_size_mb=8))
        assert result["changed"] and result["sha256"] == sha256(str(big))
        back = tmp_path / "back.ova"
        client.download_file("crash", "big.ova", str(back))
        assert sha256(str(back)) == sha256(str(big))
    finally:
        server.close()
