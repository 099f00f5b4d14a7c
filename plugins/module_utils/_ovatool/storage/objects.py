# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host's half of an export into object storage: each file of the export (the OVA, each image, the sums) is an
object written through a presigned multipart upload the controller started (storage/s3control) and handed over in
the ova_export module's ``upload`` option. Nothing is staged on the host's disk, and no credential reaches it.

ObjectOutputs is the export's output set (protocols.OutputSet) for such a destination: the export core asks it for
the package's output and each image's, and to commit them, without knowing what they are.
"""
from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any, Dict, List, Optional

from ..errors import OutputError
from .multipart import MultipartStream
from .presigned import Link
from .retry import RetryWindow
from .urlbook import SignedUrls, renewal_path

SCHEME = "s3://"  # destinations written through a presigned multipart upload


def handles(dest: str) -> bool:
    """Whether ``dest`` names an object (an ``s3://`` URL) rather than a path on this host."""
    return dest.lower().startswith(SCHEME)


class ObjectOutputs:
    """The objects of one export. ``upload``: the module's ``upload`` option (the OVA's upload, and under
    ``images`` one per image and one for the sums, in the order of the plan's ``objects``); ``progress``: the
    export's progress file, through which its URLs are renewed when the controller made them ``renewable``."""

    def __init__(self, dest: str, upload: Optional[Dict[str, Any]], retry_seconds: float, progress: Any = None,
                 wanted_images: int = 0) -> None:
        if not upload:
            raise OutputError("an s3:// destination is written through the controller (the ova_export action, or "
                              "the ovatool command with boto3), which signs the upload", dest)
        given = list(upload.get("images") or [])
        if len(given) != wanted_images:
            raise OutputError(f"the controller sent {len(given)} uploads for the images and their sums, not "
                              f"{wanted_images}", dest)
        self.dest = dest
        self.upload = upload
        self.images = given
        self.retry_seconds = retry_seconds
        self.progress = progress
        self.unsent: List[Any] = []  # of the images' streams: what each has not sent, for renewing its URLs

    # -- what the export asks before it writes -----------------------------------------------------------
    def paths(self) -> List[str]:
        return []  # nothing on this host

    def existing(self) -> List[str]:
        return []  # the controller decided from the objects' metadata that the export runs

    def guard(self, stack: ExitStack, warnings: List[str]) -> None:
        """Nothing to lock here: the controller aborted what a killed run left (stale multipart uploads)."""

    def current(self, stamp: str) -> bool:
        return False

    def expect(self, stamp: str) -> None:
        """The sources are still those the controller planned the upload for."""
        if self.upload.get("fingerprint") != stamp:
            raise OutputError("the VM's files changed between the check and the export; run again", self.dest)

    # -- the outputs -------------------------------------------------------------------------------------
    def _stream(self, upload: Dict[str, Any], dest: str) -> MultipartStream:
        note = getattr(self.progress, "note", None)  # a progress file says why the export waits
        retry = self.retry_seconds

        def waiting(silent: float) -> None:
            if note is not None:
                note(f"object store unreachable since {silent:.0f} s, retrying for up to {retry:.0f} s")

        link = Link(float(upload.get("timeout") or 60), bool(upload.get("validate_certs", True)),
                    RetryWindow(retry, on_wait=waiting))
        path = getattr(self.progress, "path", None)
        renewal = renewal_path(path) if path and upload.get("renewable") else None
        stream = MultipartStream(SignedUrls(upload, renewal, retry, note), int(upload["part_size"]),
                                 threads=int(upload.get("threads") or 4), link=link, dest=dest)
        stream.renewable = renewal is not None
        return stream

    def image(self, dest: str, index: int) -> MultipartStream:
        """The object of the image (or the sums) at ``index`` among the set's, named ``dest``."""
        stream = self._stream(dict(self.images[index], timeout=self.upload.get("timeout")), dest)
        if stream.renewable:
            self.unsent.append(stream.unsent)
        return stream

    def package(self) -> MultipartStream:
        """The OVA's object (an object store takes packages as OVA files only: plan.resolve_dest)."""
        stream = self._stream(self.upload, self.dest)
        if stream.renewable and self.progress is not None:
            self.progress.attach("upload", stream.unsent)
            if self.unsent:
                self.progress.attach("uploads", lambda: [unsent() for unsent in self.unsent])
        return stream

    # -- after the writing -------------------------------------------------------------------------------
    def commit(self, package: Any, images: Any, threads: int) -> Dict[str, Any]:
        """Complete the uploads: the images', the package's, then the sums (the object that says the set is
        whole), which list digests hashed as written or read back through each object's GET URL. On a failure
        the objects already completed are deleted. Returns the result's ``parts`` and ``upload_peak_bytes``, and
        with images ``images``, ``sha256``, ``sums`` and ``sums_size``."""
        if images is None:
            sent = package.commit()
            return {"parts": sent["parts"], "upload_peak_bytes": package.peak_held}
        try:
            sizes = []
            for output in images.outputs:
                sizes.append(output.commit()["size"])
                images.committed.append(output)
            sent = package.commit()
            images.committed.append(package)
            streams = images.outputs + [package]
            jobs = [(lambda value=known: value) if known else stream.object_digest
                    for known, stream in zip(images.known() + [None], streams)]
            digests = images.digests(jobs, threads)
            images.write_sums(digests, [os.path.basename(stream.dest) for stream in streams])
            sums = images.sums.commit()
        except BaseException:
            images.rollback()
            raise
        return {"images": images.entries(sizes, digests), "sha256": digests[-1], "sums": images.sums.dest,
                "sums_size": sums["size"], "parts": sent["parts"], "upload_peak_bytes": package.peak_held}

    def record(self, stamp: str) -> Dict[str, Any]:
        """The objects carry the fingerprint in their metadata (the controller set it): the result reports it."""
        return {"fingerprint": stamp}
