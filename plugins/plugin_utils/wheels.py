# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's half of bringing the accelerator: which wheels fit a host's Python, and where they come from.

A wheel's file name carries its tags (PEP 427: ``name-version[-build]-python-abi-platform.whl``, each tag set
dotted); a host's Python loads a wheel when one of its (python, abi, platform) tags is among the tags that Python
supports. ``supported_tags`` lists those from the facts the host reports (the rules of the ``packaging`` library's
``tags`` module: CPython's own ABI, abi3 from older minors, pure-Python wheels; manylinux by glibc version (PEP
600, with the legacy aliases of PEP 513/571/599), musllinux by musl version (PEP 656), macOS by version and
architecture). Wheels come from the wheelhouse folder first, then from a cache on the controller that ``pip
download`` fills from the index the controller's pip is configured for. Standard library only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.fileio import file_digest

Tag = Tuple[str, str, str]

# the wheels the exporter can use: (project as wheels name it, the codec it gives)
PROJECTS: Tuple[Tuple[str, str], ...] = (("isal", "isal"), ("zlib_ng", "zlib-ng"))
_LEGACY = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-(?P<build>\d[^-]*))?-(?P<py>[^-]+)-(?P<abi>[^-]+)"
                    r"-(?P<plat>[^-]+)\.whl$")


def _arch(facts: dict) -> str:
    machine = str(facts.get("machine") or "").lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64" if facts.get("platform") != "darwin" else "arm64"}.get(
        machine, machine)
    if facts.get("bits") == 32:
        machine = {"x86_64": "i686", "aarch64": "armv7l"}.get(machine, machine)
    return machine


def _version(text: str) -> Tuple[int, ...]:
    numbers = []
    for part in text.split("."):
        digits = re.match(r"\d+", part)
        numbers.append(int(digits.group(0)) if digits else 0)
    return tuple(numbers)


def platforms(facts: dict) -> List[str]:
    """Platform tags the host's Python accepts, most specific first."""
    arch = _arch(facts)
    libc, libc_version = facts.get("libc"), _version(str(facts.get("libc_version") or "0"))
    tags: List[str] = []
    if facts.get("platform") == "darwin":
        major, minor = (_version(str(facts.get("macos_version") or "10.9")) + (0, 0))[:2]
        arches = [arch, "universal2"] + (["intel", "universal"] if arch == "x86_64" else [])
        versions = [(m, 0) for m in range(major, 10, -1)] if major >= 11 else []
        versions += [(10, m) for m in range(minor if major == 10 else 16, 3, -1)]
        return [f"macosx_{ma}_{mi}_{a}" for ma, mi in versions for a in arches
                if not (a == "arm64" and ma < 11)]
    if not str(facts.get("platform") or "").startswith("linux"):
        return []
    if libc == "glibc" and len(libc_version) >= 2:
        for minor in range(libc_version[1], 4, -1):
            if arch not in ("x86_64", "i686") and minor < 17:
                break  # no manylinux before 2.17 outside x86
            tags.append(f"manylinux_2_{minor}_{arch}")
            legacy = _LEGACY.get((2, minor))
            if legacy:
                tags.append(f"{legacy}_{arch}")
    elif libc == "musl" and len(libc_version) >= 2:
        tags += [f"musllinux_1_{minor}_{arch}" for minor in range(libc_version[1], -1, -1)]
    tags.append(f"linux_{arch}")
    return tags


def supported_tags(facts: dict) -> List[Tag]:
    """Every (python, abi, platform) tag the host's Python loads, most preferred first."""
    plats = platforms(facts)
    major, minor = (list(facts.get("version") or [3, 0]) + [0, 0])[:2]
    tags: List[Tag] = []
    if facts.get("implementation") == "cpython" and major == 3:
        own = f"cp3{minor}"
        flags = str(facts.get("abiflags") or "")
        abi = own + flags.replace("m", "") if minor >= 8 else own + flags
        tags += [(own, abi, plat) for plat in plats]
        if "t" not in flags:  # a free-threaded build takes no abi3 wheel
            tags += [(f"cp3{m}", "abi3", plat) for m in range(minor, 1, -1) for plat in plats]
        tags += [(own, "none", plat) for plat in plats]
    pythons = [f"py3{minor}", "py3"] + [f"py3{m}" for m in range(minor - 1, -1, -1)]
    tags += [(py, "none", plat) for py in pythons for plat in plats]
    tags += [(py, "none", "any") for py in pythons]
    return tags


def describe(facts: dict) -> str:
    """'CPython 3.8 on linux x86_64, glibc 2.17' - what a warning says of a host's Python."""
    name = {"cpython": "CPython", "pypy": "PyPy"}.get(str(facts.get("implementation")), facts.get("implementation"))
    version = ".".join(str(n) for n in facts.get("version") or [])
    libc = f", {facts['libc']} {facts['libc_version']}" if facts.get("libc") else ""
    return f"{name} {version}{facts.get('abiflags', '')} on {facts.get('platform')} {facts.get('machine')}{libc}"


def parse_wheel(filename: str) -> Optional[Tuple[str, Tuple[int, ...], List[Tag]]]:
    """(normalised project, version, tags) of a wheel file name; None when it is not one."""
    match = _WHEEL.match(os.path.basename(filename))
    if not match:
        return None
    name = re.sub(r"[-_.]+", "_", match.group("name")).lower()
    tags = [(py, abi, plat) for py in match.group("py").split(".") for abi in match.group("abi").split(".")
            for plat in match.group("plat").split(".")]
    return name, _version(match.group("version")), tags


def _candidates(folders: Iterable[str], project: str, ranks: Dict[Tag, int]) -> List[Tuple[tuple, str]]:
    found = []
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            parsed = parse_wheel(name)
            if parsed is None or parsed[0] != project:
                continue
            fits = [ranks[tag] for tag in parsed[2] if tag in ranks]
            if fits:
                found.append(((parsed[1], -min(fits)), os.path.join(folder, name)))
    return sorted(found, reverse=True)


def sound(path: str) -> Optional[str]:
    """None when ``path`` is a whole zip whose members pass their CRC check, else why not."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        return f"{os.path.basename(path)} is not a readable wheel ({exc})"
    if bad is not None:
        return f"{os.path.basename(path)} is damaged ({bad} fails its CRC check)"
    return None


def pick(folders: Sequence[str], facts: dict) -> Tuple[List[dict], List[str]]:
    """The best sound wheel per project in ``folders`` for the host: ([{codec, project, path, sha256}], reasons)."""
    ranks: Dict[Tag, int] = {}
    for index, tag in enumerate(supported_tags(facts)):
        ranks.setdefault(tag, index)
    chosen, reasons = [], []
    for project, codec in PROJECTS:
        damaged = []
        for _key, path in _candidates(folders, project, ranks):
            why = sound(path)
            if why is None:
                chosen.append({"codec": codec, "project": project, "path": path, "sha256": file_digest(path, "sha256"),
                               "wheel": os.path.basename(path)})
                break
            damaged.append(why)
        else:
            reasons.append("; ".join(damaged) if damaged else
                           f"no {project} wheel for {describe(facts)} in {' or '.join(folders) or 'no folder'}")
    return chosen, reasons


FAILED_FOR = 600  # seconds a failed download is not tried again for the same kind of host (an offline controller)


def download(cache: str, facts: dict, projects: Iterable[str], timeout: float = 300) -> Optional[str]:
    """``pip download`` the projects' wheels for the host into ``cache``; None, or why it did not work. A failure
    is remembered in the cache for ``FAILED_FOR`` seconds, so that a controller without an index does not wait for
    pip again on every host and every run."""
    plats = [plat for plat in platforms(facts) if not plat.startswith("linux_")]
    major, minor = (list(facts.get("version") or [3, 0]) + [0, 0])[:2]
    if facts.get("implementation") != "cpython" or not plats:
        return f"no wheels are published for {describe(facts)}"
    os.makedirs(cache, exist_ok=True)
    marker = os.path.join(cache, f".failed-cp{major}{minor}-{plats[0]}")
    try:
        with open(marker) as handle:
            if time.time() - os.path.getmtime(marker) < FAILED_FOR:
                return f"{handle.read().strip()} (not tried again for {FAILED_FOR // 60} minutes)"
    except OSError:
        pass
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
            "--only-binary=:all:", "--retries", "1", "--timeout", "20", "-d", cache,
            "--python-version", f"{major}.{minor}", "--implementation", "cp"]
    for plat in plats:
        argv += ["--platform", plat]
    problems = []
    for project in projects:
        try:
            proc = subprocess.run(argv + [project], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"pip download could not run on the controller ({exc})"
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.decode("utf-8", "replace").splitlines()
                     if line.startswith("ERROR")] or proc.stderr.decode("utf-8", "replace").strip().splitlines()
            problems.append(f"pip download {project} failed on the controller ({(lines or ['no output'])[-1]})")
    if problems:
        with open(marker, "w") as handle:
            handle.write("; ".join(problems))
    return "; ".join(problems) or None
