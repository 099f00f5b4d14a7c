# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Deflate back ends producing zlib-wrapped streams (RFC 1950).

streamOptimized grains are zlib streams, not raw deflate (docs/formats.md,
streamOptimized). ISA-L (``isal``) and zlib-ng (``zlib_ng``) are used when they
can be imported: both release the GIL and are several times faster than
zlib at a similar ratio. All three write streams every reader accepts.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple, Union

from ..errors import OvatoolError

CODECS = ("isal", "zlib-ng", "zlib")
PRESETS = ("fast", "balanced", "max")

# preset -> level, per codec, chosen for a similar ratio class across codecs.
_LEVELS: Dict[str, Dict[str, int]] = {
    "isal": {"fast": 2, "balanced": 3, "max": 3},
    "zlib-ng": {"fast": 2, "balanced": 6, "max": 9},
    "zlib": {"fast": 2, "balanced": 6, "max": 9},
}
_MODULES = {"isal": "isal.isal_zlib", "zlib-ng": "zlib_ng.zlib_ng", "zlib": "zlib"}


@dataclass(frozen=True)
class Codec:
    name: str
    level: int
    compress: Callable[[Any], bytes]

    def describe(self) -> str:
        return f"{self.name} level {self.level}"


def _import(name: str):
    try:
        return importlib.import_module(_MODULES[name])
    except ImportError:
        return None


def available() -> Tuple[str, ...]:
    return tuple(name for name in CODECS if _import(name) is not None)


def _level(name: str, compression: Union[str, int]) -> int:
    text = str(compression).strip().lower()
    if text in PRESETS:
        return _LEVELS[name][text]
    try:
        number = int(text)
    except ValueError:
        raise OvatoolError(
            f'compression "{compression}" is not one of {", ".join(PRESETS)} or a level from 1 to 9') from None
    if not 1 <= number <= 9:
        raise OvatoolError(f"compression level {number} is outside 1..9")
    if name == "isal":  # ISA-L has levels 0..3; map the zlib scale onto them
        return 1 if number <= 3 else 2 if number <= 6 else 3
    return number


def select_codec(codec: str = "auto", compression: Union[str, int] = "fast") -> Codec:
    """The codec to use: ``auto`` takes the fastest importable one."""
    wanted = (codec or "auto").strip().lower()
    if wanted == "auto":
        name = available()[0]
    elif wanted in CODECS:
        if _import(wanted) is None:
            package = {"isal": "isal", "zlib-ng": "zlib-ng"}[wanted]
            raise OvatoolError(
                f'codec "{wanted}" was asked for but the Python package "{package}" is not installed '
                f"on this host (pip install {package}), or use codec: auto")
        name = wanted
    else:
        raise OvatoolError(f'unknown codec "{codec}": use auto, {", ".join(CODECS)}')
    module = _import(name)
    level = _level(name, compression)
    raw = module.compress

    def compress(data: bytes, _raw=raw, _level=level) -> bytes:
        return _raw(data, _level)

    return Codec(name, level, compress)
