# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""formats/raw.py: the disk's bytes, exactly its capacity long; zero grains are holes in a file and written into
an object (``dense``)."""
from __future__ import annotations

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats.raw import RawWriter

from support.membytes import sample_disk, written


@pytest.mark.parametrize("dense", [False, True])
def test_raw_is_the_disk_byte_for_byte(dense):
    data = sample_disk(tail=777)
    image = written(RawWriter, data, dense=dense)
    assert image == data and RawWriter.bound(len(data)) == len(data)


def test_a_disk_that_ends_in_zeros_still_has_its_length():
    data = b"\x05" * 65536 + bytes(3 * 65536 + 10)
    assert written(RawWriter, data) == data
