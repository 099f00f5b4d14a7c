# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Renewed upload URLs (storage/urlbook, s3control.Renewer): the host picks up a renewal file of its own upload
only, a URL the store calls expired waits for a renewal (or, with nobody to renew it, fails saying why), giving
up the upload ends the wait, the renewal file is its owner's only, and the controller renews at half-life the
parts not sent yet. The real store is in tests/functional/test_export_s3.py."""
from __future__ import annotations

import os
import stat
import threading
import time

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.s3control import Renewer
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.urlbook import (
    ABORT, COMPLETE, DELETE, GET, SignedUrls, UrlExpired, renewal_path, write_renewal)

UPLOAD = {"urls": ["u1", "u2", "u3"], "complete_url": "c", "abort_url": "a", "bucket": "b", "key": "k.ova",
          "upload_id": "id-1", "expires": 1000.0, "lifetime": 60}


def test_renewal_path_sits_beside_the_progress_file():
    assert renewal_path("/s/.web.vmx.progress.json") == "/s/.web.vmx.urls.json"
    assert renewal_path("/s/progress") == "/s/progress.urls.json"


def test_a_renewal_of_this_upload_replaces_its_urls(tmp_path):
    path = str(tmp_path / ".x.urls.json")
    urls = SignedUrls(UPLOAD, path)
    assert urls.get(2) == (0, "u2") and urls.get(COMPLETE)[1] == "c"
    write_renewal(path, {"upload_id": "another", "parts": {"2": "wrong"}})
    assert urls.get(2) == (0, "u2"), "another upload's renewal is ignored"
    time.sleep(0.01)
    write_renewal(path, {"upload_id": "id-1", "expires": 2000.0, "parts": {"2": "n2", "3": "n3"},
                         "complete_url": "nc", "abort_url": "na"})
    assert urls.get(2)[1] == "n2" and urls.get(1)[1] == "u1" and urls.get(ABORT)[1] == "na"
    assert urls.status([1], 3) == {"bucket": "b", "key": "k.ova", "upload_id": "id-1", "expires": 2000.0,
                                   "lifetime": 60, "parts": 3, "held": [1], "next": 3}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_an_expired_url_is_used_again_once_renewed(tmp_path):
    path = str(tmp_path / ".x.urls.json")
    notes = []
    urls = SignedUrls(UPLOAD, path, wait_seconds=30, note=notes.append)
    used = []

    def put(url):
        used.append(url)
        if url == "u2":
            raise UrlExpired("uploading part 2 failed: 403 Forbidden: Request has expired")
        return "etag"

    threading.Timer(0.8, lambda: write_renewal(path, {"upload_id": "id-1", "parts": {"2": "n2"}})).start()
    assert urls.use(2, put) == "etag" and used == ["u2", "n2"]
    assert notes and "waiting for fresh ones" in notes[0]


def test_nobody_to_renew_fails_at_once_saying_why():
    urls = SignedUrls(UPLOAD, None)

    def put(url):
        raise UrlExpired("403 Forbidden: Request has expired")

    with pytest.raises(UrlExpired, match="synchronous export cannot get fresh ones.*presign_seconds"):
        urls.use(1, put)


def test_no_renewal_in_time_fails_and_cancel_ends_the_wait(tmp_path):
    urls = SignedUrls(UPLOAD, str(tmp_path / "none.json"), wait_seconds=1)

    def put(url):
        raise UrlExpired("expired")

    with pytest.raises(UrlExpired, match="no fresh ones came from the controller in 1 s"):
        urls.use(1, put)
    urls = SignedUrls(UPLOAD, str(tmp_path / "none.json"), wait_seconds=600)
    threading.Timer(0.3, urls.cancel).start()
    began = time.monotonic()
    with pytest.raises(UrlExpired):
        urls.use(1, put)
    assert time.monotonic() - began < 5


class FakeS3:
    """What Renewer asks of boto3: presigned URLs (and no temporary credentials)."""

    def generate_presigned_url(self, operation, ExpiresIn, Params):  # noqa: N803 (boto3's names)
        return f"{operation}:{Params.get('PartNumber', '')}:{ExpiresIn}"


def test_the_controller_renews_at_half_life_what_is_not_sent():
    renewer = Renewer()
    renewer.s3 = FakeS3()
    upload = dict(UPLOAD, parts=3, held=[1], next=3)
    assert not renewer.due("j", upload, 969.0) and renewer.due("j", upload, 970.0)
    signed = renewer.renew("j", upload)
    assert sorted(signed["parts"]) == ["1", "3"] and signed["parts"]["3"] == "upload_part:3:60"
    assert signed["complete_url"].startswith("complete_multipart_upload") and signed["upload_id"] == "id-1"
    assert not renewer.due("j", upload, time.time() + 25), "renewed: not due again until its own half-life"
    assert renewer.due("j", upload, time.time() + 31)
    assert not renewer.due("j", None, 0) and not renewer.due("j", {"expires": 5}, 10)


def test_one_renewal_file_serves_every_upload_of_an_export(tmp_path):
    """An export with images has an upload per object; renewals of each land in the one file, none lost, and each
    upload takes its own (GET and DELETE URLs of the object included)."""
    path = str(tmp_path / ".x.urls.json")
    ova = SignedUrls(UPLOAD, path)
    image = SignedUrls(dict(UPLOAD, upload_id="id-2", get_url="g", delete_url="d"), path)
    assert image.get(GET)[1] == "g" and image.get(DELETE)[1] == "d"
    write_renewal(path, {"upload_id": "id-2", "parts": {"1": "i1"}, "get_url": "g2", "delete_url": "d2"})
    time.sleep(0.01)
    write_renewal(path, {"upload_id": "id-1", "parts": {"1": "o1"}})
    assert ova.get(1)[1] == "o1" and ova.get(2)[1] == "u2"
    assert image.get(1)[1] == "i1" and image.get(GET)[1] == "g2" and image.get(DELETE)[1] == "d2"


def test_the_renewer_keeps_each_upload_of_a_job_apart():
    renewer = Renewer()
    first, second = dict(UPLOAD, next=1, parts=3), dict(UPLOAD, upload_id="id-2", next=1, parts=3)
    assert renewer.due("job", first, 971.0) and renewer.due("job", second, 971.0)
    renewer.renewed["job:id-1"] = 2000.0
    assert not renewer.due("job", first, 971.0) and renewer.due("job", second, 971.0)
