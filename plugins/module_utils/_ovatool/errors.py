# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One exception hierarchy for the whole engine.

Every error carries a message a person can act on, naming the file and the
problem. Front ends (modules, the command) print ``str(error)``; they never
show a traceback for an ``OvatoolError``.
"""
from __future__ import annotations

import errno
import os
from typing import Optional


class OvatoolError(Exception):
    """Base of every error the engine raises on purpose."""

    def __init__(self, message: str, path: Optional[str] = None) -> None:
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class VmxError(OvatoolError):
    """The .vmx cannot be read or describes something we cannot export."""


class DiskFormatError(OvatoolError):
    """A VMDK descriptor or extent is malformed or unsupported."""


class SnapshotError(OvatoolError):
    """A snapshot cannot be found, taken, read or removed."""


class OutputError(OvatoolError):
    """The destination cannot be written."""


class ExportCancelled(OvatoolError):
    """The export was stopped by a signal or by the caller."""


def describe_os_error(exc: OSError) -> str:
    """A short human description of an OSError, without the path."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOENT:
        return "no such file or directory"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno == errno.EIO:
        return "input/output error"
    return exc.strerror or str(exc)


def os_error(exc: OSError, path: Optional[str] = None, what: str = "") -> OvatoolError:
    """Wrap an OSError into the error type a front end can show."""
    where = path or exc.filename
    text = describe_os_error(exc)
    if what:
        text = f"{what}: {text}"
    return OvatoolError(text, os.fspath(where) if where is not None else None)


class MissingLibrary(OvatoolError):
    """A Python package needed for this destination is not installed (``library`` names it)."""

    def __init__(self, library: str, scheme: str) -> None:
        self.library = library
        super().__init__(f"the {library} Python package is needed for {scheme}:// destinations")
