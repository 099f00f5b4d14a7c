# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A package written straight into an S3 multipart upload, with presigned URLs only (standard library).

The OVA writer writes one pass front to back, except that it leaves *holes* it fills later: the reserved
``.ovf``/``.mf`` at the head and each disk member's tar header (its size is known once the disk is written).
It leaves them by seeking forward, and fills them by seeking back. This stream cuts what it is given into
parts and uploads every part as soon as it holds no hole, several at once; a part with a hole stays in memory
until it is filled, which for the head is the very end (the first part is uploaded last: S3 assembles parts
by number, not by arrival).

Part sizes: S3 wants every part but the last to be at least 5 MiB, and at most 10,000 parts. Parts without
holes are ``part_size`` bytes. A part that gets a hole is closed at ``hold_size`` bytes (a part is cut just
before a hole when it has 5 MiB already), so what is held back stays small whatever the part size.

Memory: the part being filled, up to ``threads`` parts queued or on the wire, and at most two held parts
(the head and the header of the disk being written): about ``(threads + 1) * part_size + 2 * hold_size``.
Fewer parts go at once when that would pass ``MEMORY_BUDGET`` (large parts, for OVAs above about 300 GB),
down to one: then ``2 * part_size + 2 * hold_size``.

On any failure, and whenever the stream is left without ``commit()`` (an error, SIGTERM turned into an
exception), the upload is aborted: no object and no incomplete upload remain. ``commit()`` completes it.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple
from xml.sax.saxutils import escape

from ..errors import OutputError, OvatoolError
from .httprange import RangedUrl
from .presigned import Link, put_part, request
from .retry import RetryWindow
from .urlbook import ABORT, COMPLETE, DELETE, GET, SignedUrls

MIN_PART = 5 * 1024 * 1024
MAX_PARTS = 10000
HOLD_SIZE = 8 * 1024 * 1024
MEMORY_BUDGET = 256 * 1024 * 1024


class _Part:
    __slots__ = ("number", "start", "size", "data", "holes", "target", "sealed", "sent")

    def __init__(self, number: int, start: int, target: int) -> None:
        self.number = number
        self.start = start
        self.size = 0
        self.data = bytearray()  # emptied once sent
        self.holes: List[List[int]] = []  # [start, end) relative to the part, not written yet
        self.target = target
        self.sealed = False  # no more appends
        self.sent = False

    @property
    def end(self) -> int:
        return self.start + self.size


def _fill_holes(holes: List[List[int]], start: int, end: int) -> List[List[int]]:
    """``holes`` minus [start, end)."""
    left = []
    for first, last in holes:
        if last <= start or first >= end:
            left.append([first, last])
            continue
        if first < start:
            left.append([first, start])
        if last > end:
            left.append([end, last])
    return left


class MultipartStream:
    """A file-like object (``write``, ``seek``, ``tell``) whose bytes become one S3 object.

    ``urls`` hold the presigned UploadPart URLs for parts 1..N of one multipart upload, and the
    CompleteMultipartUpload and AbortMultipartUpload URLs of the same upload; a URL the store calls expired is
    used again once renewed (storage/urlbook).
    """

    holes = False  # an object has no holes: an image writes its zeros (formats/imagefile ``dense``)
    renewable = False  # its URLs are renewed through a file beside the export's progress file

    def __init__(self, urls: SignedUrls, part_size: int, hold_size: int = HOLD_SIZE, threads: int = 4,
                 link: Optional[Link] = None, dest: str = "") -> None:
        if part_size < MIN_PART or hold_size < MIN_PART:
            raise OutputError(f"parts must be at least {MIN_PART} bytes (S3's minimum)", dest)
        if not len(urls) or len(urls) > MAX_PARTS:
            raise OutputError(f"an upload has 1 to {MAX_PARTS} parts, not {len(urls)}", dest)
        self.urls = urls
        self.part_size = part_size
        self.hold_size = hold_size
        self.threads = max(1, min(threads, MEMORY_BUDGET // part_size - 1))
        self.link = link or Link()
        self.dest = dest
        self.position = 0
        self.end = 0
        self.parts: List[_Part] = []
        self.etags: Dict[int, str] = {}
        self.pool: Optional[ThreadPoolExecutor] = None
        self.slots = threading.BoundedSemaphore(self.threads)
        self.futures: List[Future] = []
        self.failure: Optional[BaseException] = None
        self.stopping = False
        self.committed = False
        self.peak_held = 0  # the most bytes held in memory at once (parts being filled, held, queued, sent)
        self.held = 0
        self.lock = threading.Lock()

    # -- the file interface the package writers use -------------------------------------------------------
    def __enter__(self) -> "MultipartStream":
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="ovatool-s3")
        return self

    @property
    def stream(self) -> "MultipartStream":
        return self

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 2:
            offset += self.end
        elif whence == 1:
            offset += self.position
        if offset < 0:
            raise OutputError("internal error: seek before the start of the upload", self.dest)
        if offset > self.end:
            self._append_hole(offset - self.end)
        self.position = offset
        return offset

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        total = len(view)
        if self.position < self.end:
            count = min(total, self.end - self.position)
            self._patch(self.position, view[:count])
            self.position += count
            view = view[count:]
        if len(view):
            self._append(view)
        return total

    def flush(self) -> None:
        self._raise_failure()

    # -- cutting into parts ----------------------------------------------------------------------------------
    def _current(self) -> _Part:
        if self.parts and not self.parts[-1].sealed:
            return self.parts[-1]
        number = len(self.parts) + 1
        if number > len(self.urls):
            raise OutputError(f"the package outgrew the {len(self.urls)} parts signed for it (internal error: "
                              "the size bound was too low)", self.dest)
        part = _Part(number, self.end, self.part_size)
        self.parts.append(part)
        return part

    def _grow(self, part: _Part, data) -> None:
        part.data += data
        part.size += len(data)
        self.end += len(data)
        self.position = self.end
        self._count(len(data))

    def _append(self, view: memoryview) -> None:
        while len(view):
            part = self._current()
            take = min(part.target - part.size, len(view))
            self._grow(part, view[:take])
            view = view[take:]
            if part.size >= part.target:
                self._seal(part)

    def _append_hole(self, size: int) -> None:
        part = self._current()
        if not part.holes and part.size >= MIN_PART:
            self._seal(part)  # cut before the hole: what came before goes now
            part = self._current()
        first = part.size
        self._grow(part, bytes(size))
        part.holes.append([first, first + size])
        part.target = max(self.hold_size, min(part.target, part.size))
        if part.size >= part.target:
            self._seal(part)

    def _patch(self, offset: int, view: memoryview) -> None:
        end = offset + len(view)
        for part in self.parts:
            if part.end <= offset or part.start >= end:
                continue
            if part.sent:
                raise OutputError(f"internal error: a write at byte {offset} reaches part {part.number}, "
                                  "already uploaded", self.dest)
            first, last = max(offset, part.start), min(end, part.end)
            part.data[first - part.start:last - part.start] = view[first - offset:last - offset]
            part.holes = _fill_holes(part.holes, first - part.start, last - part.start)
            if part.sealed and not part.holes:
                self._send(part)

    def _seal(self, part: _Part) -> None:
        part.sealed = True
        if not part.holes:
            self._send(part)

    # -- uploading -------------------------------------------------------------------------------------------
    def _count(self, delta: int) -> None:
        with self.lock:
            self.held += delta
            self.peak_held = max(self.peak_held, self.held)

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def _send(self, part: _Part) -> None:
        if self.pool is None:
            raise OutputError("internal error: the upload is not open", self.dest)
        self.slots.acquire()  # at most ``threads`` parts queued or on the wire: the writer waits here
        if self.failure is not None:
            self.slots.release()
            self._raise_failure()
        part.sent = True
        self.futures.append(self.pool.submit(self._upload, part))

    def _upload(self, part: _Part) -> None:
        try:
            if self.stopping:
                return
            data = part.data
            self.etags[part.number] = self.urls.use(part.number, lambda url: put_part(
                url, part.number, lambda: memoryview(data), len(data), self.link))
        except BaseException as exc:  # pylint: disable=broad-except
            if self.failure is None:
                self.failure = exc if isinstance(exc, OvatoolError) else OutputError(str(exc), self.dest)
        finally:
            self._count(-len(part.data))
            part.data = bytearray()
            self.slots.release()

    def unsent(self) -> Dict[str, Any]:
        """The parts not uploaded yet, for renewing their URLs: what the URL book reports (storage/urlbook)."""
        parts = list(self.parts)
        held = [part.number for part in parts if not part.sent]
        return self.urls.status(held, len(parts) + 1)

    def commit(self) -> Dict[str, int]:
        """Upload what is left, wait for every part and complete the upload. Returns its size and parts."""
        if self.parts and not self.parts[-1].sealed:
            self.parts[-1].sealed = True
            if not self.parts[-1].holes:
                self._send(self.parts[-1])
        unfilled = [part.number for part in self.parts if part.holes]
        if unfilled:
            raise OutputError(f"internal error: parts {unfilled} still have unwritten bytes", self.dest)
        for future in self.futures:
            future.result()
        self._raise_failure()
        body = "<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{number}</PartNumber><ETag>{escape(self.etags[number])}</ETag></Part>"
            for number in sorted(self.etags)) + "</CompleteMultipartUpload>"
        payload = body.encode("utf-8")
        self.urls.use(COMPLETE, lambda url: request("POST", url, lambda: payload, len(payload),
                                                    "completing the upload", self.link))
        self.committed = True
        return {"size": self.end, "parts": len(self.parts)}

    def object_digest(self, algorithm: str = "sha256") -> str:
        """The completed object's digest, read back through its GET URL (what a head filled last allows)."""
        source = RangedUrl(self.urls.get(GET)[1], self.link.timeout, self.link.validate_certs, label=self.dest)
        return source.digest(algorithm, 0, self.end)

    def delete(self) -> None:
        """Remove the completed object (a later member of its set failed)."""
        self.urls.use(DELETE, lambda url: request("DELETE", url, lambda: b"", 0, f"removing {self.dest}", self.link))

    def abort(self) -> Optional[str]:
        """Stop sending and abort the upload; returns why the abort failed, if it did."""
        self.stopping = True
        self.link.window.cancel()  # parts waiting out an outage, or for fresh URLs, give up now
        self.urls.cancel()
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        try:
            # a window of its own, at most a minute: the export's may be over already (that may be why it stops)
            link = Link(self.link.timeout, self.link.validate_certs, RetryWindow(min(60.0, self.link.window.seconds)))
            request("DELETE", self.urls.get(ABORT)[1], lambda: b"", 0, "aborting the upload", link)
        except OvatoolError as exc:
            if "NoSuchUpload" not in str(exc):
                return str(exc)
        return None

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.committed:
            if self.pool is not None:
                self.pool.shutdown(wait=True)
            return
        self.abort()  # a failed abort leaves an incomplete upload: the next run's controller aborts it


def plan_parts(bound: int, part_size: int, holds: int) -> Tuple[int, int]:
    """Part size and count for an upload of at most ``bound`` bytes with at most ``holds`` holes: each hole
    can end one part early (the cut before it, and its own part of ``HOLD_SIZE``)."""
    size = max(part_size, MIN_PART, -(-bound // (MAX_PARTS - 2 * holds - 2)))
    return size, min(MAX_PARTS, -(-bound // size) + 2 * holds + 2)
