# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Grains that do not compress are stored: a zlib stream of stored deflate blocks, found by a cheap test, for every
codec; everything else is deflated as before. Python's own zlib.decompress is the reader held to account here
(qemu-img and vmdk-convert read whole exports in tests/functional/test_incompressible.py)."""
from __future__ import annotations

import os
import random
import zlib

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export import codec as codecs
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.vmdk import GRAIN_BYTES

TEXT = b"".join(b"line %d of a text file, the kind of data that shrinks a lot\n" % n for n in range(2000))


def _is_stored(stream: bytes) -> bool:
    """The stream's first deflate block is a stored one (BTYPE 00 in bits 1-2 of the byte after the header)."""
    return (stream[2] >> 1) & 3 == 0


@pytest.mark.parametrize("size", [0, 1, 4095, 0xFFFF, 0x10000, 0x10001, 3 * 0xFFFF + 7])
def test_stored_stream_reads_back(size):
    data = os.urandom(size)
    stream = b"".join(codecs.stored_zlib(data))
    assert zlib.decompress(stream) == data
    assert len(stream) == codecs.stored_size(size)
    assert _is_stored(stream)


@pytest.mark.parametrize("name", codecs.CODECS)
def test_random_grain_is_stored_and_text_is_deflated(name):
    if name not in codecs.available():
        pytest.skip(f"{name} is not importable in this test run")
    codec = codecs.select_codec(name, "fast")
    noise = bytearray(os.urandom(GRAIN_BYTES))
    stored = b"".join(codec.encode(memoryview(noise)))
    assert _is_stored(stored) and zlib.decompress(stored) == noise
    text = TEXT[:GRAIN_BYTES]
    packed = b"".join(codec.encode(memoryview(text)))
    assert not _is_stored(packed) and len(packed) < len(text) // 4 and zlib.decompress(packed) == text
    assert b"".join(codec.encode(memoryview(text))) == packed  # the same input gives the same bytes


def test_the_cheap_test_lets_nothing_compressible_through():
    """Text, code-like data with many zeros, and random 7-bit data (which shrinks by about 1/8) are all compressed;
    data that is random only in part of the grain is compressed too (the probes are spread over the grain)."""
    rng = random.Random(7)
    seven_bits = bytes(rng.getrandbits(7) for _byte in range(GRAIN_BYTES))
    zeros_between = b"".join(rng.randbytes(48) + bytes(16) for _run in range(GRAIN_BYTES // 64))
    half = os.urandom(GRAIN_BYTES // 2) + TEXT[:GRAIN_BYTES // 2]
    for data in (TEXT[:GRAIN_BYTES], seven_bits, zeros_between, half):
        assert not codecs.incompressible(data, lambda piece: zlib.compress(piece, 1))
    assert codecs.incompressible(os.urandom(GRAIN_BYTES), lambda piece: zlib.compress(piece, 1))
    assert not codecs.incompressible(os.urandom(3 * codecs.PROBE), lambda piece: zlib.compress(piece, 1))


def test_a_grain_the_probes_miss_is_never_written_larger_than_stored():
    """Random data with 64 zero bytes sprinkled over its first block fails the cheap test's first step, so it is
    deflated; zlib then splits it into more stored blocks than needed, 10 bytes more than stored_zlib. The grain
    is written as stored_zlib's stream instead."""
    data = bytearray(os.urandom(GRAIN_BYTES))
    for at in random.Random(3).sample(range(codecs.PROBE), 64):
        data[at] = 0
    assert not codecs.incompressible(data, lambda piece: zlib.compress(piece, 1))
    assert len(zlib.compress(bytes(data), 9)) > codecs.stored_size(len(data))  # what the cap is for
    parts = codecs.select_codec("zlib", 9).encode(memoryview(data))
    assert sum(len(part) for part in parts) == codecs.stored_size(len(data))
    assert zlib.decompress(b"".join(parts)) == data


@pytest.mark.parametrize("name", codecs.available())
def test_a_4k_window_grain_serves_vmdk_and_qcow2(name):
    """Compressed once: a zlib stream (header 48 0D, 4 KiB window) for the VMDK, whose deflate qemu's qcow2 reader
    inflates with a 4 KiB window (wbits -12) into the grain."""
    grain = (b"ovatool " * 4096 + bytes(range(256)) * 128)[:65536]
    chosen = codecs.select_codec(name, "fast", codecs.QCOW2_WINDOW_BITS)
    stream = b"".join(bytes(part) for part in chosen.encode(grain))
    assert stream[:2] == b"\x48\x0d" and zlib.decompress(stream) == grain
    assert zlib.decompress(stream[2:-4], -12) == grain
    plain = codecs.select_codec(name, "fast")
    assert b"".join(bytes(p) for p in plain.encode(grain))[:1] == b"\x78"


def test_raw_deflate_without_a_wbits_argument():
    """Python 3.8-3.10's zlib.compress takes no wbits: a compressor per call then."""
    class OldZlib:
        DEFLATED = zlib.DEFLATED
        compressobj = staticmethod(zlib.compressobj)

        @staticmethod
        def compress(data, level=-1):
            return zlib.compress(data, level)

    deflate = codecs._raw_deflater(OldZlib, 6, -12)
    assert zlib.decompress(deflate(b"x" * 100000), -12) == b"x" * 100000


def test_compression_none_stores_every_grain():
    chosen = codecs.select_codec("zlib", "none")
    grain = b"\0\1" * 32768
    stream = b"".join(bytes(part) for part in chosen.encode(grain))
    assert chosen.level == 0 and len(stream) == codecs.stored_size(len(grain)) and zlib.decompress(stream) == grain
