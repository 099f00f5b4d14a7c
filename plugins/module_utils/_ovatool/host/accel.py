# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host's half of bringing the accelerator (ISA-L, zlib-ng) from the controller.

The host needs no pip, venv, network or compiler: the controller picks wheels that fit the facts reported here
(``interpreter()``), copies them over, and ``install`` unpacks each one (a wheel is a zip) into a folder named
after its SHA256 under ``<state dir>/.accel/``. An unpacking goes into a temporary folder that is renamed into
place when complete, so a folder with a final name is always whole, and two runs unpacking the same wheel at once
both end with one good folder. ``check`` then imports the codecs from those folders in a separate process (a
shared object that does not fit, or that the host refuses to load, cannot take the module down with it) and
compresses a little data with them; the exporter puts the folders that passed on ``sys.path`` (``activate``).
"""
from __future__ import annotations

import glob
import importlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, Iterable, List, Optional, Tuple

from ..errors import OvatoolError
from ..fileio import file_digest

ACCEL_DIR = ".accel"
# wheel project (normalised) -> (codec name, module the exporter imports)
PROJECTS: Dict[str, Tuple[str, str]] = {"isal": ("isal", "isal.isal_zlib"), "zlib_ng": ("zlib-ng", "zlib_ng.zlib_ng")}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHECK = r"""
import json, sys, zlib
sys.path[:0] = json.loads(sys.argv[1])
found = {}
data = bytes(range(256)) * 64 + bytes(4096)
for codec, module in json.loads(sys.argv[2]):
    try:
        mod = __import__(module, fromlist=["compress"])
        if zlib.decompress(mod.compress(data, 1)) != data:
            raise ValueError("compressed data did not decompress to the input")
        found[codec] = None
    except BaseException as exc:
        found[codec] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(found))
"""


def _libc() -> Tuple[str, str]:
    """("glibc", "2.36"), ("musl", "1.2"), or ("", "") - the facts that decide manylinux/musllinux wheels."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (AttributeError, ValueError, OSError):
        text = ""
    name, _sep, version = text.partition(" ")
    if name == "glibc" and version:
        return "glibc", version
    for loader in sorted(glob.glob("/lib/ld-musl-*.so.1")):
        try:  # the musl loader prints its version when run with no arguments
            proc = subprocess.run([loader], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        match = re.search(r"Version (\d+)\.(\d+)", proc.stderr.decode("ascii", "replace"))
        if match:
            return "musl", f"{match.group(1)}.{match.group(2)}"
    return "", ""


def interpreter() -> dict:
    """The facts of this Python that decide which wheels it can load."""
    libc, libc_version = _libc()
    return {
        "implementation": sys.implementation.name,
        "version": [sys.version_info[0], sys.version_info[1]],
        "abiflags": getattr(sys, "abiflags", ""),
        "platform": sys.platform,
        "system": platform.system(),
        "machine": platform.machine(),
        "bits": 64 if sys.maxsize > 2 ** 32 else 32,
        "libc": libc,
        "libc_version": libc_version,
        "macos_version": platform.mac_ver()[0],
        "executable": sys.executable,
    }


def accel_root(state_dir: str) -> str:
    return os.path.join(state_dir, ACCEL_DIR)


def installed(state_dir: str) -> List[str]:
    """SHA256s of the wheels already unpacked here (only complete folders carry a final name)."""
    root = accel_root(state_dir)
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise OvatoolError(f"cannot list the accelerator folder: {exc.strerror}", root) from None
    return sorted(name for name in names if _SHA256.match(name) and os.path.isdir(os.path.join(root, name)))


def _safe_members(archive: zipfile.ZipFile, wheel: str) -> List[zipfile.ZipInfo]:
    members = archive.infolist()
    for member in members:
        name = member.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise OvatoolError(f'member "{name}" would land outside its folder; the wheel is refused', wheel)
    return members


def _unpack(wheel: str, folder: str) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member in _safe_members(archive, wheel):
                archive.extract(member, folder)
                mode = (member.external_attr >> 16) & 0o777
                if mode and not member.is_dir():
                    os.chmod(os.path.join(folder, member.filename), mode & 0o755 | 0o644)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise OvatoolError(f"not a readable wheel ({exc})", wheel) from None


def install_wheel(state_dir: str, wheel: str, sha256: str) -> bool:
    """Unpack ``wheel`` into ``<state dir>/.accel/<sha256>``; False when that folder is there already."""
    if not _SHA256.match(sha256):
        raise OvatoolError(f'"{sha256}" is not a SHA256 digest')
    root = accel_root(state_dir)
    final = os.path.join(root, sha256)
    if os.path.isdir(final):
        return False
    actual = file_digest(wheel, "sha256")
    if actual != sha256:
        raise OvatoolError(f"the wheel's SHA256 is {actual}, not {sha256}: it was damaged on its way", wheel)
    os.makedirs(root, mode=0o755, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=".unpack-", dir=root)
    try:
        _unpack(wheel, temporary)
        os.chmod(temporary, 0o755)
        try:
            os.rename(temporary, final)
        except OSError:
            if not os.path.isdir(final):  # not another run that got there first
                raise
            return False
    finally:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
    return True


def remove(state_dir: str, sha256: str) -> None:
    """Drop an unpacked wheel (one that does not load here)."""
    if _SHA256.match(sha256):
        shutil.rmtree(os.path.join(accel_root(state_dir), sha256), ignore_errors=True)


def check(paths: Iterable[str], codecs: Iterable[str]) -> Dict[str, Optional[str]]:
    """codec -> None when it imports and round-trips from ``paths`` in a fresh process, else why not."""
    wanted = [(codec, module) for codec, module in PROJECTS.values() if codec in set(codecs)]
    if not wanted:
        return {}
    try:
        proc = subprocess.run([sys.executable, "-c", _CHECK, json.dumps(list(paths)), json.dumps(wanted)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return {codec: f"the check could not run: {exc}" for codec, _module in wanted}
    if proc.returncode != 0:
        why = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit status {proc.returncode}"])
        return {codec: f"loading it stopped Python ({why[-1]})" for codec, _module in wanted}
    return json.loads(proc.stdout.decode("utf-8"))


def activate(paths: Iterable[str]) -> List[str]:
    """Put the unpacked accelerators' folders first on ``sys.path``; returns those that exist."""
    found = [path for path in paths if os.path.isdir(path)]
    sys.path[:0] = [path for path in found if path not in sys.path]
    importlib.invalidate_caches()
    return found


def bring(state_dir: str, wheels: List[dict], required: bool = False) -> dict:
    """Unpack the wheels the controller copied (``file``), check every listed one loads, keep what does.

    ``wheels``: ``{"codec", "sha256", "file"}`` each, ``file`` only for wheels not unpacked here yet. Wheels that
    do not load are removed again, so nothing useless stays behind; with ``required`` and no codec left, this
    raises (and has left nothing new on the host)."""
    root = accel_root(state_dir)
    problems: Dict[str, str] = {}
    added = set()
    for wheel in wheels:
        if wheel.get("file"):
            try:
                if install_wheel(state_dir, wheel["file"], wheel["sha256"]):
                    added.add(wheel["sha256"])
            except OvatoolError as exc:
                problems[wheel["codec"]] = str(exc)
            except OSError as exc:
                problems[wheel["codec"]] = f"unpacking it failed: {exc.strerror or exc}"
    ready = {wheel["codec"]: wheel["sha256"] for wheel in wheels if wheel["codec"] not in problems}
    for codec, sha256 in list(ready.items()):
        if not os.path.isdir(os.path.join(root, sha256)):
            problems[codec] = "its wheel was neither copied nor unpacked on this host before"
            del ready[codec]
    loaded = check([os.path.join(root, sha256) for sha256 in ready.values()], ready)
    removed = False
    for codec, why in loaded.items():
        if why is not None:
            problems[codec] = f"it does not load here ({why})"
            sha256 = ready.pop(codec)
            removed = removed or sha256 not in added  # one unpacked by this run and removed again changes nothing
            remove(state_dir, sha256)
    if not ready and os.path.isdir(root) and not os.listdir(root):
        os.rmdir(root)
    if required and not ready:
        details = "; ".join(f"{codec}: {why}" for codec, why in sorted(problems.items()))
        raise OvatoolError(f"no accelerator could be used on this host, and it is required: {details}")
    return {"changed": removed or bool(added & set(ready.values())), "codecs": sorted(ready),
            "paths": [os.path.join(root, ready[codec]) for codec in sorted(ready)], "problems": problems}
