# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Uploads ride out outages of their destination (issue 21): the real OpenSSH server falls off the network for
60 s in the middle of an SFTP upload, which goes on from where it was cut when the server is back; an outage
longer than ``retry_seconds`` fails the upload, and the next run leaves nothing behind; an HTTP server that
answers 503 and then goes away for a while gets the PUT once it is back, and a refusal fails at once."""
from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from support import servers
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.upload import UploadOptions, upload

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def big_payload(tmp_path_factory):
    """160 MiB that does not compress (paramiko sends it in a few seconds on loopback: time to cut it)."""
    path = tmp_path_factory.mktemp("outage-payload") / "appliance.ova"
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for _block in range(160):
            block = os.urandom(MiB)
            digest.update(block)
            handle.write(block)
    return str(path), digest.hexdigest()


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture()
def sshd(tmp_path):
    pytest.importorskip("paramiko")
    server = servers.Sshd(str(tmp_path / "sshd"))
    yield server
    server.close()


class Upload(threading.Thread):
    """``upload(options)`` in a thread: its result, or the OvatoolError it raised."""

    def __init__(self, options: UploadOptions) -> None:
        super().__init__(daemon=True)
        self.options = options
        self.result = None
        self.error = None

    def run(self) -> None:
        try:
            self.result = upload(self.options)
        except OvatoolError as exc:
            self.error = exc


def partial_size(folder: str) -> int:
    """Size of the upload's temporary file in ``folder`` (-1 when there is none)."""
    names = [name for name in os.listdir(folder) if name.endswith(".partial")]
    return os.path.getsize(os.path.join(folder, names[0])) if names else -1


def wait_for_partial(folder: str, at_least: int, upload_thread: threading.Thread) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and upload_thread.is_alive():
        size = partial_size(folder)
        if size >= at_least:
            return size
        time.sleep(0.01)
    raise AssertionError(f"the upload did not reach {at_least} bytes on the server in time")


def sftp_options(sshd, src: str, target: str, retry_seconds: float) -> UploadOptions:
    return UploadOptions(src=src, dest=f"sftp://root@127.0.0.1:{sshd.port}{target}", private_key=sshd.client_key,
                         known_hosts=sshd.known_hosts, timeout=10, retry_seconds=retry_seconds)


def test_an_sftp_upload_rides_out_a_60_s_outage_and_goes_on_where_it_was_cut(sshd, big_payload, tmp_path):
    src, digest = big_payload
    folder = tmp_path / "store"
    folder.mkdir()
    job = Upload(sftp_options(sshd, src, f"{folder}/appliance.ova", retry_seconds=300))
    job.start()
    cut_at = wait_for_partial(str(folder), 16 * MiB, job)
    sshd.drop()
    time.sleep(60)
    assert job.is_alive(), f"the upload gave up during the outage: {job.error}"
    sshd.start()
    smallest = None  # the temporary file never shrinks: the new session appends, it does not start again
    while job.is_alive():
        size = partial_size(str(folder))
        if size >= 0:
            smallest = size if smallest is None else min(smallest, size)
        time.sleep(0.005)
    job.join()
    assert job.error is None, str(job.error)
    assert job.result["changed"] is True
    assert sha256(str(folder / "appliance.ova")) == digest
    assert os.listdir(str(folder)) == ["appliance.ova"], "a temporary file was left"
    assert smallest is None or smallest >= cut_at, f"the upload started again from 0 ({smallest} < {cut_at})"


def test_an_sftp_outage_longer_than_the_window_fails_and_the_next_run_cleans_up(sshd, big_payload, tmp_path):
    src, digest = big_payload
    folder = tmp_path / "store"
    folder.mkdir()
    options = sftp_options(sshd, src, f"{folder}/appliance.ova", retry_seconds=4)
    job = Upload(options)
    job.start()
    wait_for_partial(str(folder), 8 * MiB, job)
    sshd.drop()
    job.join(60)
    assert not job.is_alive()
    assert job.error is not None and "has not answered for" in str(job.error), job.error
    assert "retry_seconds 4" in str(job.error)
    assert not (folder / "appliance.ova").exists()
    sshd.start()
    result = upload(options)  # the server is back: the next run writes over what the cut one left
    assert result["changed"] and sha256(str(folder / "appliance.ova")) == digest
    assert os.listdir(str(folder)) == ["appliance.ova"]


def test_an_http_put_rides_out_503_and_a_server_that_went_away(tmp_path, big_payload):
    src, digest = big_payload
    server = servers.PutServer(str(tmp_path / "http-store"))
    try:
        server.handler.refuse = [503, 502]
        server.pause()
        job = Upload(UploadOptions(src=src, dest=f"{server.url}/appliances/appliance.ova", retry_seconds=60))
        job.start()
        time.sleep(5)  # connections refused meanwhile
        assert job.is_alive()
        server.start()
        job.join(120)
        assert job.error is None, str(job.error)
        assert job.result["changed"] and server.handler.puts == 1 and server.handler.refuse == []
        assert sha256(os.path.join(server.folder, "appliances_appliance.ova")) == digest
    finally:
        server.close()


def test_an_http_refusal_fails_at_once(tmp_path, payload_small=b"x" * 4096):
    src = tmp_path / "small.ova"
    src.write_bytes(payload_small)
    server = servers.PutServer(str(tmp_path / "http-store"))
    try:
        server.handler.refuse = [403]
        began = time.monotonic()
        with pytest.raises(OvatoolError, match="PUT answered 403"):
            upload(UploadOptions(src=str(src), dest=f"{server.url}/a.ova", retry_seconds=600))
        assert time.monotonic() - began < 30
    finally:
        server.close()
