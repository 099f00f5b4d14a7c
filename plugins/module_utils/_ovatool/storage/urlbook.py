# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The presigned URLs of one multipart upload, renewed while a long export runs (host side, standard library).

URLs signed with temporary credentials die with them, often after an hour, and an export of a large VM can run
longer. The controller signs them for ``lifetime`` seconds and says when they end (``expires``, seconds since
the epoch). For an asynchronous export, its waiting side (ova_export_wait) signs the parts not yet uploaded,
and the complete and abort URLs, again well before then and hands them to the host in a *renewal file* beside
the progress file (``.<name>.urls.json``, mode 0600: the URLs are as good as a password for this one upload).
The host reads it whenever it changes; a part whose URL the store calls expired waits for fresh ones (the
progress file says so) until ``retry_seconds`` have passed.

The host tells the controller what to sign in its progress file, under ``upload``: the upload's bucket, key
and id, when its URLs end, their lifetime, and the parts not sent yet (``held`` part numbers, and every number
from ``next`` to ``parts``).
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import OutputError
from ..fileio import replace_small_file

COMPLETE = 0  # the names of the URLs that are not parts (parts are 1..N)
ABORT = -1
GET = -2  # the object, once complete: read back to hash it
DELETE = -3  # the object, once complete: removed when a later member of its set fails


def renewal_path(progress_file: str) -> str:
    """Where the renewed URLs of the export that writes ``progress_file`` go: beside it."""
    suffix = ".progress.json"
    base = progress_file[:-len(suffix)] if progress_file.endswith(suffix) else progress_file
    return base + ".urls.json"


def write_renewal(path: str, renewal: Dict[str, Any]) -> None:
    """Atomically, readable by its owner only (0600 from its creation, then renamed into place). One file per
    export holds the renewals of all its uploads (an OVA's and its images'), by upload id."""
    uploads: Dict[str, Any] = {}
    try:
        with open(path) as handle:
            found = json.load(handle)
        if isinstance(found, dict) and isinstance(found.get("uploads"), dict):
            uploads = found["uploads"]
    except (OSError, ValueError):
        pass
    uploads[str(renewal.get("upload_id"))] = renewal
    replace_small_file(path, json.dumps({"uploads": uploads}), 0o600)


class UrlExpired(OutputError):
    """The store refused a URL because its signature has expired."""


class SignedUrls:
    """URL of part N (1..N), of completing (COMPLETE) and of aborting (ABORT) one upload; renewed from
    ``renewal`` (a path, or None when nobody renews them: a synchronous export)."""

    def __init__(self, upload: Dict[str, Any], renewal: Optional[str] = None, wait_seconds: float = 900.0,
                 note: Optional[Callable[[str], None]] = None) -> None:
        self.urls: Dict[int, str] = dict(enumerate(upload["urls"], 1))
        self.urls[COMPLETE] = upload["complete_url"]
        self.urls[ABORT] = upload["abort_url"]
        for which, key in ((GET, "get_url"), (DELETE, "delete_url")):
            if upload.get(key):
                self.urls[which] = upload[key]
        self.parts = len(upload["urls"])
        self.upload_id = upload.get("upload_id")
        self.expires = upload.get("expires")
        self.lifetime = upload.get("lifetime")
        self.identity = {key: upload.get(key) for key in ("bucket", "key", "upload_id")}
        self.renewal = renewal
        self.wait_seconds = wait_seconds
        self.note = note
        self.version = 0
        self.seen: Optional[Tuple[int, int]] = None
        self.lock = threading.Lock()
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop waiting for fresh URLs (the upload is being given up)."""
        self.cancelled.set()

    def __len__(self) -> int:
        return self.parts

    def get(self, which: int) -> Tuple[int, str]:
        """(version, URL) of part ``which`` (or COMPLETE, ABORT), the freshest there is."""
        with self.lock:
            self._reload()
            return self.version, self.urls[which]

    def use(self, which: int, call: Callable[[str], Any]) -> Any:
        """``call(url)``; when the store says the URL expired, again with a renewed one."""
        while True:
            version, url = self.get(which)
            try:
                return call(url)
            except UrlExpired as exc:
                self._wait_for_renewal(version, str(exc))

    def status(self, held: List[int], next_part: int) -> Dict[str, Any]:
        """What the controller needs to renew these URLs (the progress file's ``upload``)."""
        return dict(self.identity, expires=self.expires, lifetime=self.lifetime, parts=self.parts, held=held,
                    next=next_part)

    def _reload(self) -> None:
        if self.renewal is None:
            return
        try:
            info = os.stat(self.renewal)
        except OSError:
            return
        if (info.st_mtime_ns, info.st_size) == self.seen:
            return
        try:
            with open(self.renewal) as handle:
                renewal = json.load(handle)
        except (OSError, ValueError):
            return  # being replaced: the next look reads it whole
        self.seen = (info.st_mtime_ns, info.st_size)
        if isinstance(renewal, dict) and isinstance(renewal.get("uploads"), dict):
            renewal = renewal["uploads"].get(str(self.upload_id))
        if not isinstance(renewal, dict) or renewal.get("upload_id") != self.upload_id:
            return  # another upload's (an earlier export of the same name)
        for number, url in (renewal.get("parts") or {}).items():
            if 1 <= int(number) <= self.parts:
                self.urls[int(number)] = str(url)
        for which, key in ((COMPLETE, "complete_url"), (ABORT, "abort_url"), (GET, "get_url"),
                           (DELETE, "delete_url")):
            if renewal.get(key):
                self.urls[which] = str(renewal[key])
        self.expires = renewal.get("expires", self.expires)
        self.version += 1

    def _wait_for_renewal(self, version: int, why: str) -> None:
        lived = f"signed for {self.lifetime:.0f} s" if self.lifetime else "signed"
        if self.renewal is None:
            raise UrlExpired(f"{why}: the upload's URLs ({lived}) expired before the export ended, and a "
                             "synchronous export cannot get fresh ones; run it asynchronously (async and "
                             "ova_export_wait, as the export role does), which renews them, or raise presign_seconds")
        deadline = time.monotonic() + self.wait_seconds
        while True:
            with self.lock:
                self._reload()
                if self.version != version:
                    return
            if time.monotonic() >= deadline or self.cancelled.is_set():
                raise UrlExpired(f"{why}: the upload's URLs ({lived}) expired and no fresh ones came from the "
                                 f"controller in {self.wait_seconds:.0f} s (ova_export_wait renews them: is it "
                                 "running, with the S3 credentials in its s3 option?)")
            if self.note is not None:
                self.note("the upload's URLs expired; waiting for fresh ones from the controller")
            self.cancelled.wait(0.5)
