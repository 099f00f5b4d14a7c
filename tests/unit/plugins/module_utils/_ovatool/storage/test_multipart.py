# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How MultipartStream cuts an OVA with holes into S3 parts (the network replaced by a recorder; the real
server is in tests/functional/test_export_s3.py)."""
from __future__ import annotations

import io
import os
import random

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OutputError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.ova import OvaWriter
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage import multipart, presigned
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.multipart import (
    MAX_PARTS, MIN_PART, MultipartStream, plan_parts)
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.urlbook import SignedUrls

MiB = 1024 * 1024


def book(urls):
    return SignedUrls({"urls": urls, "complete_url": "http://x/c", "abort_url": "http://x/a"})


class Recorder(MultipartStream):
    """Keeps the parts instead of sending them, and the order they were handed to the upload threads in (the
    threads themselves may start them in another order)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent = {}
        self.order = []

    def _send(self, part) -> None:
        self.order.append(part.number)
        super()._send(part)

    def _upload(self, part) -> None:
        self.sent[part.number] = bytes(part.data)
        self.etags[part.number] = f'"{part.number}"'
        self._count(-len(part.data))
        part.data = bytearray()
        self.slots.release()


@pytest.fixture()
def completed(monkeypatch):
    calls = []
    monkeypatch.setattr(multipart, "request", lambda method, url, body, size, *rest: calls.append((method, body())))
    return calls


def write_ova(out, disks, seed: int = 1) -> None:
    """What an export does: reserved head, each disk a member whose header is patched, the head filled last."""
    rng = random.Random(seed)
    writer = OvaWriter(out, 0, "sha256")
    head = writer.reserve("x.ovf", 3000)
    mf = writer.reserve("x.mf", 200)
    for number, size in enumerate(disks):
        member = writer.member(f"x-disk{number}.vmdk")
        left = size
        while left:
            step = min(left, rng.randrange(1, 3 * MiB))
            member.write(rng.randbytes(step) if hasattr(rng, "randbytes") else os.urandom(step))
            left -= step
        member.close()
    writer.fill(head, b"o" * 3000)
    writer.fill(mf, b"m" * 200)
    writer.close()


@pytest.mark.parametrize("disks", [[1 * MiB], [20 * MiB, 3 * MiB, 9 * MiB], [0, 40 * MiB], [6 * MiB] * 5])
def test_parts_reassemble_to_the_local_bytes(disks, completed):
    local = io.BytesIO()
    write_ova(local, disks)
    stream = Recorder(book([f"http://x/{n}" for n in range(1, 40)]), part_size=5 * MiB)
    with stream:
        write_ova(stream, disks)
        stream.commit()
    parts = [stream.sent[n] for n in sorted(stream.sent)]
    assert b"".join(parts) == local.getvalue(), "the object is the local file, byte for byte"
    assert all(len(p) >= MIN_PART for p in parts[:-1]), [len(p) for p in parts]
    assert sorted(stream.sent) == list(range(1, len(parts) + 1))
    assert stream.order.index(1) >= len(parts) - 2, "the head, filled after the disks, is sent last (before the tail)"
    assert completed[0][0] == "POST" and completed[0][1].count(b"<Part>") == len(parts)
    assert stream.peak_held <= (stream.threads + 1) * 5 * MiB + 2 * multipart.HOLD_SIZE + 3 * MiB


def test_abort_on_error_and_no_complete(completed):
    stream = Recorder(book(["http://x/1"]), part_size=5 * MiB)
    with pytest.raises(OutputError, match="outgrew the 1 parts"):
        with stream:
            stream.write(b"x" * (12 * MiB))
    assert [call[0] for call in completed] == ["DELETE"], "aborted, never completed"


def test_part_plan_holds_any_size():
    for bound in (1, 5 * MiB, 300 * 10 ** 9, 5 * 10 ** 12):
        size, count = plan_parts(bound, 32 * MiB, 10)
        assert size >= MIN_PART and count <= MAX_PARTS
        assert (count - 2 * 10 - 2) * size >= bound
    big = plan_parts(10 ** 12, 32 * MiB, 3)[0]
    stream = MultipartStream(book(["http://x/1"]), part_size=big, threads=4)
    assert stream.threads == 1 and 2 * big + 2 * multipart.HOLD_SIZE < 300 * MiB, "1 TB: one part at a time"


def _parts(tmp_path, count: int) -> tuple:
    src = tmp_path / "file.ova"
    src.write_bytes(os.urandom(count * 1024))
    return str(src), [{"number": n, "offset": (n - 1) * 1024, "size": 1024, "url": f"http://x/{n}"}
                      for n in range(1, count + 1)]


def test_host_leaves_expired_and_late_parts_for_the_controller(tmp_path, monkeypatch):
    """ova_upload's rounds: with ``stop_after`` a part whose URL the store calls expired is left (not a failure),
    and no part starts after ``stop_after`` seconds; without it an expired URL fails the upload."""
    src, parts = _parts(tmp_path, 4)

    def put_part(url, number, body, size, link):
        assert body().read(size) == open(src, "rb").read()[(number - 1) * 1024:number * 1024]
        if number == 2:
            raise presigned.UrlExpired("uploading part 2 failed: 403 Forbidden: Request has expired")
        return f'"{number}"'

    monkeypatch.setattr(presigned, "put_part", put_part)
    sent = presigned.put_parts(src, parts, threads=1, stop_after=60)
    assert sent == {"etags": [{"number": n, "etag": f'"{n}"'} for n in (1, 3, 4)], "left": [2]}
    assert presigned.put_parts(src, parts, threads=1, stop_after=0) == {"etags": [], "left": [1, 2, 3, 4]}
    with pytest.raises(presigned.UrlExpired):
        presigned.put_parts(src, parts, threads=1)
