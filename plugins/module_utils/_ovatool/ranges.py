# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Byte ranges: (offset, length) pairs in ascending order, merged where they touch or overlap."""
from __future__ import annotations

from typing import Iterable, Iterator, Tuple


def merge_ranges(ranges: Iterable[Tuple[int, int]]) -> Iterator[Tuple[int, int]]:
    """Coalesce ascending (offset, length) ranges that touch or overlap."""
    run_start = run_end = -1
    for offset, length in ranges:
        if run_start >= 0 and offset <= run_end:
            run_end = max(run_end, offset + length)
            continue
        if run_start >= 0:
            yield run_start, run_end - run_start
        run_start, run_end = offset, offset + length
    if run_start >= 0:
        yield run_start, run_end - run_start
