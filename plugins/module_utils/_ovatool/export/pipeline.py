# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The threaded export pipeline: read -> compress (pool) -> write, in LBA order.

The calling thread walks the disk's allocated ranges and reads batches of
whole grains; a thread pool turns each batch into grain records (zero grains
are dropped without being compressed); one writer thread takes the finished
batches in submission order and hands them to the stream writer. Every queue
is bounded, so memory does not grow with the size of the disk.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Deque, Iterable, Iterator, List, Optional, Sequence, Tuple

from .codec import Codec
from ..errors import ExportCancelled, OvatoolError
from ..formats.grains import GrainBatch
from ..protocols import BatchWriter, DiskReader
from ..ranges import merge_ranges
from .gentle import ReadLimit
from .profile import Profile, clock_of
from ..formats.vmdk import GRAIN_BYTES, GRAIN_SECTORS, SECTOR, grain_record_parts

BATCH_GRAINS = 32  # 2 MiB of disk per task: large enough to amortise task overhead
READ_AHEAD = 16  # batches (32 MiB) the reader asks the kernel for before it reads them
_ZERO_GRAIN = bytes(GRAIN_BYTES)

Progress = Callable[[int], None]


@dataclass
class DiskStats:
    allocated_bytes: int = 0  # bytes read from the source (allocated grains)
    data_bytes: int = 0  # bytes of non-zero grains (the OVF's populatedSize)
    grains: int = 0  # non-zero grains written
    seconds: float = 0.0


def grain_batches(ranges: Iterable[Tuple[int, int]], capacity: int,
                  batch_grains: int = BATCH_GRAINS) -> Iterator[Tuple[int, int]]:
    """(first grain, count) batches covering every grain a range touches, ascending."""
    last_grain = -(-capacity // GRAIN_BYTES)
    grains = ((offset // GRAIN_BYTES, min(-(-(offset + length) // GRAIN_BYTES), last_grain) - offset // GRAIN_BYTES)
              for offset, length in ranges if length > 0)
    for first, count in merge_ranges(grains):
        yield from _split(first, first + count, batch_grains)


def allocated_bytes(disk: DiskReader) -> int:
    """Bytes an export reads from ``disk``: whole grains touched by data (a metadata walk only)."""
    return sum(min(count * GRAIN_BYTES, disk.capacity - first * GRAIN_BYTES)
               for first, count in grain_batches(disk.allocated_ranges(), disk.capacity))


def read_ahead(disk: DiskReader, batches: Iterable[Tuple[int, int]],
               depth: int = READ_AHEAD) -> Iterator[Tuple[int, int]]:
    """(first grain, bytes) of each batch, after ``disk.advise`` has been told of it ``depth`` batches
    earlier: the kernel reads those while the pipeline works on these (a cold sparse disk read in LBA order
    is random I/O for the disk, one small read at a time without this)."""
    pending: "Deque[Tuple[int, int]]" = deque()
    for first, count in batches:
        offset = first * GRAIN_BYTES
        length = min(count * GRAIN_BYTES, disk.capacity - offset)
        disk.advise(offset, length)
        pending.append((first, length))
        if len(pending) > depth:
            yield pending.popleft()
    yield from pending


def _split(start: int, end: int, size: int) -> Iterator[Tuple[int, int]]:
    while start < end:
        count = min(size, end - start)
        yield start, count
        start += count


Encode = Callable[[Any], Tuple[Any, ...]]


@dataclass
class PipelineSettings:
    """How one disk is read: threads, and what watches or limits the reading."""

    threads: int = 0
    progress: Optional[Progress] = None
    cancelled: Optional[Callable[[], bool]] = None
    profile: Optional[Profile] = None
    read_limit: Optional[ReadLimit] = None


def compress_batch(data: bytearray, length: int, first_grain: int, encode: Optional[Encode],
                   profile: Optional[Profile] = None) -> Tuple[bytes, List[Tuple[int, int]], int]:
    """Grain records for ``data[:length]``: (blob, [(grain, sector in blob)], non-zero bytes). Without ``encode``
    (no writer needs compressed grains) only the zero grains are found: every sector is -1 and the blob empty."""
    clock = clock_of(profile)
    spent = [0.0, 0.0, 0.0]  # zero detection, compression, grain records
    parts: List[bytes] = []
    entries: List[Tuple[int, int]] = []
    sectors = 0
    data_bytes = 0
    view = memoryview(data)
    for index, at in enumerate(range(0, length, GRAIN_BYTES)):
        end = min(at + GRAIN_BYTES, length)
        began = clock()
        # startswith compares in place (memcmp, no copy); a memoryview comparison would be far slower
        zero = data.startswith(_ZERO_GRAIN if end - at == GRAIN_BYTES else _ZERO_GRAIN[:end - at], at)
        detected = clock()
        spent[0] += detected - began
        if zero:
            continue
        grain = first_grain + index
        data_bytes += end - at
        if encode is None:
            entries.append((grain, -1))
            continue
        packed = encode(view[at:end])
        compressed = clock()
        spent[1] += compressed - detected
        record = grain_record_parts(grain * GRAIN_SECTORS, packed)
        parts += record
        entries.append((grain, sectors))
        sectors += sum(len(part) for part in record) // SECTOR
        spent[2] += clock() - compressed
    began = clock()
    blob = b"".join(parts)
    if profile is not None:
        spent[2] += clock() - began
        for stage, seconds in zip(("zero detection", "compression", "grain records"), spent):
            profile.add(stage, seconds)
    return blob, entries, data_bytes


class _Release:
    """A batch buffer shared by several writers: back to the free pool when the last one is done with it."""

    def __init__(self, buffer: bytearray, users: int, free: "queue.Queue[bytearray]") -> None:
        self.buffer, self.users, self.free = buffer, users, free
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            self.users -= 1
            last = self.users == 0
        if last:
            self.free.put(self.buffer)


class _WriterThread(threading.Thread):
    """One more writer of a disk (an image) on a thread of its own: writing, and hashing what it writes, beside
    the other writers. Batches queue up to the pipeline's buffers, which bound them."""

    def __init__(self, writer: BatchWriter, failure: List[BaseException]) -> None:
        super().__init__(name="ovatool-image", daemon=True)
        self.writer = writer
        self.failure = failure
        self.batches: "queue.Queue[Optional[Tuple[GrainBatch, _Release]]]" = queue.Queue()
        self.start()

    def run(self) -> None:
        while True:
            item = self.batches.get()
            if item is None:
                return
            batch, release = item
            try:
                if not self.failure:
                    self.writer.write_batch(batch)
            except BaseException as exc:  # handed to the calling thread; keep draining
                self.failure.append(exc)
            finally:
                release()


def resolve_threads(threads: int) -> int:
    if threads and threads > 0:
        return threads
    try:
        return max(1, len(os.sched_getaffinity(0)))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def run_pipeline(disk: DiskReader, writers: Sequence[BatchWriter], codec: Optional[Codec],
                 settings: Optional[PipelineSettings] = None) -> DiskStats:
    """Export one virtual disk's data into every writer (the VMDK stream, images): one read, one compression.

    The first writer runs on the pipeline's writer thread, every other one (the images) on a thread of its own.
    ``codec`` None: no writer needs compressed grains (images only, or qcow2 with ``compression: none``).
    A fixed set of batch buffers circulates reader -> pool -> writer -> reader:
    nothing is allocated per batch, and the buffers bound the memory in use.
    """
    settings = settings or PipelineSettings()
    profile, read_limit, progress = settings.profile, settings.read_limit, settings.progress
    workers = resolve_threads(settings.threads)
    encode = codec.encode if codec is not None else None
    clock = clock_of(profile)
    stats = DiskStats()
    began = time.monotonic()
    in_flight = 2 * workers + 2
    free: "queue.Queue[bytearray]" = queue.Queue()
    for _slot in range(in_flight + 1):
        free.put(bytearray(BATCH_GRAINS * GRAIN_BYTES))
    finished: "queue.Queue[Optional[Tuple[Future, bytearray, int, int]]]" = queue.Queue()
    failure: List[BaseException] = []
    others = [_WriterThread(writer, failure) for writer in writers[1:]]

    def write_loop() -> None:
        while True:
            item = finished.get()
            if item is None:
                return
            future, buffer, first, length = item
            release = _Release(buffer, 1, free)
            try:
                if not failure:
                    blob, entries, data_bytes = future.result()
                    if entries:
                        began_writing = clock()
                        batch = GrainBatch(first, buffer, length, blob, entries)
                        release.users += len(others)
                        for other in others:
                            other.batches.put((batch, release))
                        writers[0].write_batch(batch)
                        if profile is not None:  # what the member's hashing and writing did not take
                            profile.add("stream framing", clock() - began_writing)
                    stats.data_bytes += data_bytes
                    stats.grains += len(entries)
            except BaseException as exc:  # handed to the calling thread; keep draining
                failure.append(exc)
            finally:
                release()

    writer_thread = threading.Thread(target=write_loop, name="ovatool-writer", daemon=True)
    writer_thread.start()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ovatool-deflate")
    try:
        for first, length in read_ahead(disk, grain_batches(disk.allocated_ranges(), disk.capacity)):
            if settings.cancelled is not None and settings.cancelled():
                raise ExportCancelled("the export was cancelled")
            buffer = free.get()
            if failure:
                free.put(buffer)
                break
            began_reading = clock()
            try:
                disk.read_into(first * GRAIN_BYTES, memoryview(buffer)[:length])
            except BaseException:
                free.put(buffer)
                raise
            if profile is not None:
                profile.add("read", clock() - began_reading)
            if read_limit is not None:
                read_limit.consume(length)
            stats.allocated_bytes += length
            finished.put((pool.submit(compress_batch, buffer, length, first, encode, profile), buffer, first,
                          length))
            if progress is not None:
                progress(length)
    finally:
        finished.put(None)
        writer_thread.join()
        for other in others:
            other.batches.put(None)
            other.join()
        pool.shutdown(wait=True)
    if failure:
        exc = failure[0]
        if isinstance(exc, (OvatoolError, OSError)):
            raise exc
        raise OvatoolError(f"compressing or writing failed: {exc}") from exc
    for writer in writers:
        writer.finish()
    stats.seconds = time.monotonic() - began
    return stats
