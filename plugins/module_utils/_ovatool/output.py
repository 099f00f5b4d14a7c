# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Atomic output files: written under a hidden temporary name, renamed after fsync.

The temporary file lies beside the destination (same file system, so the
rename is atomic), has an unpredictable name and mode 0600 while written,
and is removed on any error, including a signal, so nobody ever finds a
half-written OVA under the real name.

While it is written, a background thread hands what has been written to the
disk every ``FLUSH_EVERY`` bytes (``fdatasync``), beside the compression: the
fsync before the rename then waits only for the tail, instead of for every
dirty page of the package at the end (measured on a 600 MB OVA: about 1.5 s of
wall time that the export no longer spends after its last byte).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
from typing import BinaryIO, Callable, List, Optional

try:
    import fcntl
except ImportError:  # not on Windows, where the exporter does not run
    fcntl = None  # type: ignore[assignment]

from .errors import ExportCancelled, OutputError, describe_os_error

BUFFER = 1 << 20
FINAL_MODE = 0o644
FLUSH_EVERY = 64 << 20


class _Flusher(threading.Thread):
    """``fdatasync(fd)`` each time the file has grown by FLUSH_EVERY bytes, until ``stop()``."""

    def __init__(self, fd: int) -> None:
        super().__init__(name="ovatool-flush", daemon=True)
        self.fd = fd
        self.stopping = threading.Event()
        self.start()

    def run(self) -> None:
        synced = 0
        while not self.stopping.wait(0.2):
            try:
                size = os.fstat(self.fd).st_size
                if size - synced >= FLUSH_EVERY:
                    os.fdatasync(self.fd)
                    synced = size
            except OSError:
                return  # the final fsync reports what is wrong

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicOutput:
    """A file written under a hidden temporary name beside ``dest`` and renamed into place by ``commit``."""

    holes = True  # a range skipped reads back as zeros (a sparse file)

    def __init__(self, dest: str) -> None:
        self.dest = dest
        self.folder = os.path.dirname(os.path.abspath(dest)) or "."
        self.temp: Optional[str] = None
        self.file: Optional[BinaryIO] = None
        self.committed = False
        self.prepared = False
        self.flusher: Optional[_Flusher] = None

    def __enter__(self) -> "AtomicOutput":
        try:
            fd, self.temp = tempfile.mkstemp(
                prefix=f".{os.path.basename(self.dest)}.", suffix=".partial", dir=self.folder)
        except OSError as exc:
            raise OutputError(f"cannot create a file in {self.folder}: {describe_os_error(exc)}", self.dest) from None
        self.file = os.fdopen(fd, "w+b", buffering=BUFFER)
        self.flusher = _Flusher(fd) if hasattr(os, "fdatasync") else None
        return self

    @property
    def stream(self) -> BinaryIO:
        if self.file is None:
            raise OutputError("internal error: the output is not open", self.dest)
        return self.file

    def prepare(self) -> str:
        """Everything but the rename: the temporary file is complete and on the disk; returns its path."""
        if self.file is None or self.temp is None:
            raise OutputError("internal error: commit() outside the with block", self.dest)
        if not self.prepared:
            self._stop_flushing()
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.chmod(self.temp, FINAL_MODE)
            self.prepared = True
        return self.temp

    def commit(self) -> None:
        self.prepare()
        os.replace(self.temp, self.dest)
        self.committed = True
        fsync_dir(self.folder)

    def _stop_flushing(self) -> None:
        if self.flusher is not None:
            self.flusher.stop()
            self.flusher = None

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop_flushing()
        if self.committed:
            return
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
        if self.temp is not None:
            try:
                os.unlink(self.temp)
            except OSError:
                pass


class AtomicFolder:
    """A folder written under a hidden temporary name beside ``dest`` and renamed into place."""

    def __init__(self, dest: str) -> None:
        self.dest = dest
        self.parent = os.path.dirname(os.path.abspath(dest)) or "."
        self.temp = ""
        self.committed = False

    def __enter__(self) -> "AtomicFolder":
        try:
            self.temp = tempfile.mkdtemp(prefix=f".{os.path.basename(self.dest)}.", suffix=".partial",
                                         dir=self.parent)
        except OSError as exc:
            raise OutputError(f"cannot create a folder in {self.parent}: {describe_os_error(exc)}",
                              self.dest) from None
        return self

    def commit(self) -> None:
        os.chmod(self.temp, 0o755)
        for name in os.listdir(self.temp):
            os.chmod(os.path.join(self.temp, name), FINAL_MODE)
        old = ""
        if os.path.lexists(self.dest):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(self.dest)}.", suffix=".old", dir=self.parent)
            os.rename(self.dest, os.path.join(old, "previous"))
        os.rename(self.temp, self.dest)
        self.committed = True
        fsync_dir(self.parent)
        if old:
            shutil.rmtree(old, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed and self.temp:
            shutil.rmtree(self.temp, ignore_errors=True)


def remove_leftovers(dest: str) -> List[str]:
    """Remove what an export of ``dest`` killed without a chance to clean up (SIGKILL, power loss) left:
    its hidden ``.<name>.<random>.partial`` file or folder and ``.old`` folders. Call it holding DestLock."""
    folder, base = os.path.split(os.path.abspath(dest))
    # exactly the names tempfile gives them (8 random characters), so that nothing of a package whose name
    # merely starts with this one's (a.ova and a.ova.b.ova) is touched
    ours = re.compile(rf"^\.{re.escape(base)}\.[a-z0-9_]{{8}}\.(partial|old)$")
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if ours.match(name):
            path = os.path.join(folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    continue
            removed.append(name)
    return removed


class DestLock:
    """One export at a time per destination, between processes: ``flock`` on ``.<name>.lock`` beside it.

    A second export of the same package waits for the first (``on_wait`` is told who holds it) and then
    decides again, so a run started while an earlier one is still writing (an SSH connection that dropped,
    a scheduler that fired twice) finds the finished package instead of writing it a second time. The
    kernel drops the lock when its holder dies, so a crash never leaves a stale lock; the file is removed
    by whoever holds it when done, and a waiter that wakes on a removed file locks the new one.
    """

    def __init__(self, dest: str, on_wait: Optional[Callable[[str], None]] = None) -> None:
        folder, base = os.path.split(os.path.abspath(dest))
        self.path = os.path.join(folder, f".{base}.lock")
        self.dest = dest
        self.on_wait = on_wait
        self.fd = -1

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            raise OutputError(f"cannot create the lock {self.path}: {describe_os_error(exc)}", self.dest) from None

    def __enter__(self) -> "DestLock":
        if fcntl is None:
            return self
        told = False
        while True:
            fd = self._open()
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if not told and self.on_wait is not None:
                        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                        self.on_wait(f"another export of {self.dest} is running (process {holder}); "
                                     "waiting for it to finish")
                        told = True
                    fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    current = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    current = False
                if current:
                    try:  # who holds it, for a waiter's message: not worth failing for (a full disk)
                        os.ftruncate(fd, 0)
                        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                    except OSError:
                        pass
                    self.fd = fd
                    return self
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the holder removed this file as it finished: lock the one that is there now

    def __exit__(self, *exc: object) -> None:
        if self.fd < 0:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)  # releases the lock
        self.fd = -1


class CancelOnSignal:
    """Turn SIGTERM/SIGHUP into ExportCancelled in the main thread while active.

    SIGINT already raises KeyboardInterrupt; with these, every way a job
    scheduler stops us unwinds through the cleanup above.
    """

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __init__(self) -> None:
        self.previous: dict = {}

    def _handler(self, signum, frame) -> None:
        raise ExportCancelled(f"stopped by signal {signal.Signals(signum).name}")

    def __enter__(self) -> "CancelOnSignal":
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                try:
                    self.previous[sig] = signal.signal(sig, self._handler)
                except (OSError, ValueError):
                    pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            try:
                signal.signal(sig, handler)
            except (OSError, ValueError):
                pass
