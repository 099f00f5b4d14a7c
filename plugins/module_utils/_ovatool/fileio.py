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
import os
from typing import Optional

_PREADV = getattr(os, "preadv", None)
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
    buffer = bytearray(8 * 1024 * 1024)
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


def replace_small_file(path: str, text: str, mode: int = 0o644) -> None:
    """Write a small text file atomically (temporary file beside it, then rename): readers see old or new."""
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temp, "w") as handle:
            handle.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
