# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""OVF manifests: ``SHA256(name)= hex`` lines (docs/formats.md, OVA)."""
from __future__ import annotations

import hashlib
import re
from typing import Dict, Iterable, List, Optional, Tuple

from ..errors import OvatoolError

ALGORITHMS = {"sha1": "SHA1", "sha256": "SHA256", "sha512": "SHA512"}
# what readers accept: OVF Tool's ``SHA256(x)= h`` and the BSD/coreutils tag form ``SHA256 (x) = h``
LINE = re.compile(r"^\s*(SHA1|SHA256|SHA512|SHA384|MD5)\s?\((.+?)\)\s?=\s*([0-9A-Fa-f]+)\s*$")


def check_algorithm(name: str) -> str:
    key = (name or "sha256").strip().lower()
    if key not in ALGORITHMS:
        raise OvatoolError(f'manifest algorithm "{name}" is not one of {", ".join(ALGORITHMS)}')
    return key


def new_hash(algorithm: str):
    return hashlib.new(check_algorithm(algorithm))


def line(algorithm: str, name: str, hexdigest: str) -> str:
    return f"{ALGORITHMS[check_algorithm(algorithm)]}({name})= {hexdigest}\n"


def size_of(algorithm: str, names: Iterable[str]) -> int:
    """Exact byte size of the manifest for these members (fixed-width digests)."""
    width = hashlib.new(check_algorithm(algorithm)).digest_size * 2
    return sum(len(line(algorithm, n, "0" * width).encode("utf-8")) for n in names)


def render(algorithm: str, digests: List[Tuple[str, str]]) -> bytes:
    return "".join(line(algorithm, n, d) for n, d in digests).encode("utf-8")


def parse(text: str, problems: List[str]) -> Tuple[Dict[str, Tuple[str, str]], Optional[str]]:
    """{file name: (algorithm, hex digest)} from both ``SHA256(x)= h`` and ``SHA256 (x) = h`` lines."""
    entries: Dict[str, Tuple[str, str]] = {}
    algorithm = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = LINE.match(line)
        if not match:
            problems.append(f"manifest line {number} is not ALGORITHM(file)= digest: {line[:80]!r}")
            continue
        algorithm = match.group(1).lower()
        entries[match.group(2)] = (algorithm, match.group(3).lower())
    return entries, algorithm
