# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading into caller-owned buffers: no copies, no fresh allocations per batch.

The pipeline recycles a few batch buffers; the extent readers fill slices of
them with ``preadv`` (the GIL is released and the kernel copies straight into
the buffer). Where ``preadv`` is missing, ``pread`` plus one copy is used.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
import weakref
from typing import Any, BinaryIO, Callable, Optional, Type

from .errors import describe_os_error

_PREADV = getattr(os, "preadv", None)
_FADVISE = getattr(os, "posix_fadvise", None)  # not on macOS: reading ahead is then left to the kernel alone
_WILLNEED = getattr(os, "POSIX_FADV_WILLNEED", None)
_ZEROS = bytes(1 << 20)


def pread_into(fd: int, view: memoryview, offset: int) -> int:
    """Fill ``view`` from ``fd`` at ``offset``; returns the bytes read (less only at end of file)."""
    done = 0
    total = len(view)
    while done < total:
        if _PREADV is not None:
            count = _PREADV(fd, [view[done:]], offset + done)
        else:
            data = os.pread(fd, total - done, offset + done)
            count = len(data)
            view[done:done + count] = data
        if count == 0:
            break
        done += count
    return done


def read_ahead(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start reading [offset, offset+length) of ``fd`` into the page cache, without waiting
    for it (``posix_fadvise(WILLNEED)``). The pipeline says this a few batches ahead of where it reads, so the
    reads of a disk that is not cached overlap each other and the compression; without the hint the reader
    waits for each piece in turn, since a sparse disk read in LBA order looks random to the kernel's own
    read-ahead. A hint only: errors are ignored."""
    if _FADVISE is not None and _WILLNEED is not None and length > 0:
        try:
            _FADVISE(fd, offset, length, _WILLNEED)
        except OSError:
            pass


def zero_fill(view: memoryview) -> None:
    """Set every byte of ``view`` to zero."""
    at = 0
    total = len(view)
    while at < total:
        step = min(total - at, len(_ZEROS))
        view[at:at + step] = _ZEROS[:step]
        at += step


def file_digest(path: str, algorithm: str = "sha256", offset: int = 0, size: Optional[int] = None) -> str:
    """Hex digest of ``size`` bytes of ``path`` from ``offset`` (to the end when None), streamed."""
    digest = hashlib.new(algorithm)
    # 1 MiB stays in the CPU's cache between the read and the hash: SHA256 of a file here ran at 0.5 GB/s with
    # 8 MiB reads and 1.4 GB/s with 1 MiB ones
    buffer = bytearray(1024 * 1024)
    view = memoryview(buffer)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        done = 0
        while size is None or done < size:
            step = len(buffer) if size is None else min(len(buffer), size - done)
            got = pread_into(fd, view[:step], offset + done)
            if got == 0:
                break
            digest.update(view[:got])
            done += got
    finally:
        os.close(fd)
    return digest.hexdigest()


class LocalFile:
    """A file on this host read by offset (protocols.RandomAccess); ``close`` when done."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self.size = os.fstat(self.fd).st_size

    def pread(self, length: int, offset: int) -> bytes:
        return os.pread(self.fd, max(length, 0), offset)

    def digest(self, algorithm: str, offset: int, size: int) -> str:
        return file_digest(self.path, algorithm, offset, size)

    def fileobj(self) -> BinaryIO:
        return open(self.path, "rb")  # pylint: disable=consider-using-with  # tarfile closes it

    def close(self) -> None:
        os.close(self.fd)


def replace_small_file(path: str, text: str, mode: int = 0o644) -> None:
    """Write a small text file atomically (temporary file beside it, then rename): readers see old or new. The
    file has ``mode`` from its creation, before a byte is written (a secret is never readable by others)."""
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), mode & 0o600)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(fd, mode)
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise


class BackgroundHash:
    """A digest computed on a thread of its own, in the order ``update`` is called: the writer that feeds it goes
    on writing while the previous data is hashed (hashlib releases the GIL on large buffers), so hashing and
    writing are two serial stages side by side instead of one after the other.

    ``update`` takes immutable data (bytes, or views of bytes) only: it is read later, on the other thread. The
    queue is bounded, so a slow hash holds the writer back instead of holding memory. ``on_cpu`` (optional)
    receives the CPU seconds the hash thread spent, when it finishes.
    """

    def __init__(self, algorithm: str, on_cpu: Optional[Callable[[float], None]] = None, depth: int = 16) -> None:
        self._hash = hashlib.new(algorithm)
        self._queue: "queue.Queue[Any]" = queue.Queue(maxsize=depth)
        self._error: list = []
        self._thread = threading.Thread(target=self._run, args=(self._queue, self._hash, self._error, on_cpu),
                                        name="ovatool-hash", daemon=True)
        self._thread.start()
        # an abandoned member (an export that failed half-way) still ends its thread
        self._finalizer = weakref.finalize(self, self._queue.put, None)

    @staticmethod
    def _run(work: "queue.Queue[Any]", digest: Any, error: list, on_cpu: Optional[Callable[[float], None]]) -> None:
        began = time.thread_time()
        while True:
            data = work.get()
            if data is None:
                break
            try:
                digest.update(data)
            except BaseException as exc:  # handed to hexdigest(); keep draining so the writer never blocks
                error.append(exc)
        if on_cpu is not None:
            on_cpu(time.thread_time() - began)

    def update(self, data: Any) -> None:
        self._queue.put(data)

    def hexdigest(self) -> str:
        self._finalizer()  # the end-of-data marker, once
        self._thread.join()
        if self._error:
            raise self._error[0]
        return self._hash.hexdigest()


def read_json_record(path: str, what: str, error: Type[Exception]) -> Optional[Any]:
    """The JSON a small record file holds (power and snapshot notes), or None when there is none; a file that
    cannot be read or is not JSON raises ``error("cannot read the <what>: <why>", path)``."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        reason = describe_os_error(exc) if isinstance(exc, OSError) else f"not JSON ({exc})"
        raise error(f"cannot read the {what}: {reason}", path) from None
