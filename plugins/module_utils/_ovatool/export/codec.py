# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Deflate back ends producing zlib-wrapped streams (RFC 1950).

streamOptimized grains are zlib streams, not raw deflate (docs/formats.md,
streamOptimized). ISA-L (``isal``) and zlib-ng (``zlib_ng``) are used when they
can be imported: both release the GIL and are several times faster than
zlib at a similar ratio. All three write streams every reader accepts.

Grains that do not compress (already-compressed files, encrypted data) are common in real guests, and every
codec spends more time on them than on data that does: ``encode`` recognises them cheaply and writes them as a
zlib stream of stored deflate blocks (RFC 1951, 3.2.4), which costs a copy and an Adler-32. The test is in two
steps: the first 4 KiB (an ext4 block) of random-looking data hold few zero and few space bytes, a count that
rules out nearly all text and code in microseconds; only then are five 4 KiB probes spread over the grain
compressed, and the grain is stored when together they shrink by less than 3 %. On the benchmark's disk of real
files this stores 3 % of the grains and the output grows by 0.08 %; on a disk of real compressed files (packages,
archives) 43 % of the grains, for 1.1 % more output (docs/formats.md).
"""
from __future__ import annotations

import importlib
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple, Union

from ..errors import OvatoolError

CODECS = ("isal", "zlib-ng", "zlib")
PRESETS = ("fast", "balanced", "max", "none")

# the level the probes of a grain run at: each codec's fastest. ISA-L has none: it deflates a random grain in
# 90 microseconds into the same two stored blocks, faster than the probes and the stored stream take (100-125)
_PROBE_LEVELS = {"isal": None, "zlib-ng": 1, "zlib": 1}
# preset -> level, per codec, chosen for a similar ratio class across codecs.
_LEVELS: Dict[str, Dict[str, int]] = {
    "isal": {"fast": 2, "balanced": 3, "max": 3, "none": 0},
    "zlib-ng": {"fast": 2, "balanced": 6, "max": 9, "none": 0},
    "zlib": {"fast": 1, "balanced": 6, "max": 9, "none": 0},  # the standard library's level 1: 13 % faster than 2
}
# level 0 ("none"): every grain goes out as stored blocks, and qcow2 images store their clusters as they are
STORED_LEVEL = 0
# a zlib header for a deflate stream with a 4 KiB window (CINFO 4): qcow2 inflates its clusters with 4 KiB, so a
# grain compressed with that window serves both the VMDK (as a zlib stream) and qcow2 (the deflate inside it)
QCOW2_WINDOW_BITS = 12
_HEAD_4K = b"\x48\x0d"  # (0x48 * 256 + 0x0d) % 31 == 0
_MODULES = {"isal": "isal.isal_zlib", "zlib-ng": "zlib_ng.zlib_ng", "zlib": "zlib"}

PROBE = 4096  # bytes per probe: one file-system block
PROBES = 5  # probes spread over a grain, first and last included
PROBE_SHRINK = 0.97  # probes that compress to more than this, together, mean "does not compress"
_RANDOM_COUNT = 48  # random data has 16 of each byte value per 4 KiB; text and code far more zeros or spaces
_STORED_MAX = 0xFFFF  # bytes per stored block
_STORED_HEAD = b"\x78\x01"  # deflate, 32 KiB window, "fastest" level: (0x78 * 256 + 0x01) % 31 == 0
_STORED_BLOCK = struct.Struct("<BHH")  # BFINAL/BTYPE=00 byte, LEN, NLEN
_ADLER = struct.Struct(">I")


def stored_zlib(data: Any, adler32: Callable[[Any], int] = zlib.adler32) -> Tuple[Any, ...]:
    """``data`` as a zlib stream (RFC 1950) of stored deflate blocks, in parts that reference ``data`` instead of
    copying it (the caller joins them once, into the batch it writes)."""
    view = memoryview(data).cast("B")
    size = len(view)
    parts: List[Any] = [_STORED_HEAD]
    at = 0
    while True:
        chunk = view[at:at + _STORED_MAX]
        at += len(chunk)
        parts += (_STORED_BLOCK.pack(1 if at >= size else 0, len(chunk), len(chunk) ^ 0xFFFF), chunk)
        if at >= size:
            break
    parts.append(_ADLER.pack(adler32(view)))
    return tuple(parts)


def stored_size(size: int) -> int:
    """Bytes of ``stored_zlib`` for ``size`` bytes of data."""
    return len(_STORED_HEAD) + size + _STORED_BLOCK.size * max(1, -(-size // _STORED_MAX)) + _ADLER.size


def incompressible(data: Any, probe: Callable[[Any], bytes]) -> bool:
    """True when ``data`` (a grain) looks like it would not shrink: a random-looking first block, and probes that
    ``probe`` compresses shrink by less than 3 % together. Grains shorter than four probes are always compressed."""
    view = memoryview(data).cast("B")
    size = len(view)
    if size < 4 * PROBE:
        return False
    head = view[:PROBE].tobytes()
    if head.count(0) > _RANDOM_COUNT or head.count(32) > _RANDOM_COUNT:
        return False
    step = (size - PROBE) // (PROBES - 1)
    return sum(len(probe(view[at:at + PROBE])) for at in range(0, step * PROBES, step)) > PROBES * PROBE * PROBE_SHRINK


@dataclass(frozen=True)
class Codec:
    """``compress``: the codec's deflate of some bytes (a zlib stream); ``encode``: one grain as the parts of a zlib
    stream, stored blocks when it does not compress (what the export writes)."""
    name: str
    level: int
    compress: Callable[[Any], bytes]
    encode: Callable[[Any], Tuple[Any, ...]]

    window_bits: int = 15

    def describe(self) -> str:
        window = "" if self.window_bits == 15 else f", {1 << self.window_bits >> 10} KiB window"
        return f"{self.name} level {self.level}{window}" if self.level else f"{self.name}, stored (no compression)"


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


def _raw_deflater(module: Any, level: int, wbits: int) -> Callable[[Any], bytes]:
    """Raw deflate with a window of 2^-wbits bytes: ``compress(data, level, wbits)`` where the module takes it (ISA-L,
    zlib-ng, Python 3.11's zlib), else a compressor per call (Python 3.8 to 3.10: slower to set up)."""
    try:
        module.compress(b"probe", level, wbits)
    except TypeError:
        compressobj, deflated = module.compressobj, module.DEFLATED

        def deflate(data: Any) -> bytes:
            engine = compressobj(level, deflated, wbits)
            return engine.compress(data) + engine.flush()
        return deflate
    compress = module.compress
    return lambda data: compress(data, level, wbits)


def select_codec(codec: str = "auto", compression: Union[str, int] = "fast", window_bits: int = 15) -> Codec:
    """The codec to use: ``auto`` takes the fastest importable one. ``window_bits`` 12 makes every compressed grain
    a zlib stream with a 4 KiB window, whose deflate a qcow2 image stores as it is (compress once, write twice)."""
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
    adler32 = module.adler32

    def compress(data: Any, _raw=raw, _level=level) -> bytes:
        return _raw(data, _level)

    def probe(data: Any, _raw=raw, _level=_PROBE_LEVELS[name] or 0) -> bytes:
        return _raw(data, _level)

    probes = _PROBE_LEVELS[name] is not None
    if window_bits != 15:
        if window_bits != QCOW2_WINDOW_BITS:
            raise OvatoolError(f"internal error: window of {window_bits} bits")
        raw_deflate = _raw_deflater(module, level, -window_bits)

        def deflate(data: Any) -> Tuple[Any, ...]:
            return _HEAD_4K, raw_deflate(data), _ADLER.pack(adler32(data))
    else:
        def deflate(data: Any, _raw=raw, _level=level) -> Tuple[Any, ...]:
            return (_raw(data, _level),)

    def encode(data: Any) -> Tuple[Any, ...]:
        if level == STORED_LEVEL or probes and incompressible(data, probe):
            return stored_zlib(data, adler32)
        packed = deflate(data)
        if sum(len(part) for part in packed) > stored_size(len(data)):  # the probes missed it: never larger
            return stored_zlib(data, adler32)
        return packed

    return Codec(name, level, compress, encode, window_bits)
