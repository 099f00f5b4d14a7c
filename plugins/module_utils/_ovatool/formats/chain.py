# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Snapshot chains: a child disk over its parents, read as the VM sees it now.

A child descriptor names its parent (``parentFileNameHint``) and the parent's
content id (``parentCID``). The chain is followed to its base, every link is
checked (parent present, CID as recorded, no loop, same capacity), and reads
are flattened: the base is read, then each child overlays the grains it
defines itself (allocated or explicitly zeroed), bottom to top.
"""
from __future__ import annotations

import heapq
import ntpath
import os
from typing import Callable, Iterator, List, Tuple

from ..errors import DiskFormatError
from ..ranges import merge_ranges

MAX_DEPTH = 255  # VMware allows 255 snapshots; deeper means a loop or junk


def parent_path(child_path: str, hint: str) -> str:
    """Where the parent named by ``hint`` is: relative to the child, absolute, or (moved VMs) beside it."""
    folder = os.path.dirname(os.path.abspath(child_path))
    candidates = []
    if hint.startswith("/") or not ntpath.isabs(hint):
        candidates.append(os.path.normpath(os.path.join(folder, hint.replace("\\", "/"))))
    candidates.append(os.path.join(folder, ntpath.basename(hint.replace("/", "\\"))))
    for candidate in candidates:
        if os.path.exists(candidate):
            return candidate
    return candidates[0]


class ChainDisk:
    """Layers, top (the disk the VMX names) first; same interface as VirtualDisk."""

    def __init__(self, layers: List) -> None:
        self.layers = layers
        top = layers[0]
        self.path = top.path
        self.descriptor = top.descriptor
        self.create_type = top.create_type
        self.capacity = top.capacity
        self.files = [name for layer in layers for name in layer.files]

    def close(self) -> None:
        for layer in self.layers:
            layer.close()

    def __enter__(self) -> "ChainDisk":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def allocated_ranges(self) -> Iterator[Tuple[int, int]]:
        return merge_ranges(heapq.merge(*(layer.allocated_ranges() for layer in self.layers)))

    def read_into(self, offset: int, view: memoryview) -> None:
        self.layers[-1].read_into(offset, view)
        for layer in reversed(self.layers[:-1]):
            for sub_offset, sub_length in list(layer.present_ranges(offset, len(view))):
                layer.read_into(sub_offset, view[sub_offset - offset:sub_offset - offset + sub_length])

    def advise(self, offset: int, length: int) -> None:
        """What ``read_into`` will read, started ahead (a hint): the base layer's range, the others' own parts."""
        self.layers[-1].advise(offset, length)
        for layer in self.layers[:-1]:
            for sub_offset, sub_length in layer.present_ranges(offset, length):
                layer.advise(sub_offset, sub_length)

    def read(self, offset: int, length: int) -> bytearray:
        buffer = bytearray(length)
        self.read_into(offset, memoryview(buffer))
        return buffer


def open_chain(path: str, open_layer: Callable):
    """The disk at ``path``, with its parents when it is a snapshot child."""
    top = open_layer(path)
    if not top.descriptor.has_parent:
        return top
    layers = [top]
    seen = {os.path.realpath(path)}
    try:
        child = top
        while child.descriptor.has_parent:
            hint = child.descriptor.parent_hint
            if not hint:
                raise DiskFormatError("a snapshot (child) disk without parentFileNameHint", child.path)
            parent_file = parent_path(child.path, hint)
            if os.path.realpath(parent_file) in seen:
                raise DiskFormatError(f"the snapshot chain loops back to {parent_file}", child.path)
            if len(layers) > MAX_DEPTH:
                raise DiskFormatError(f"the snapshot chain is deeper than {MAX_DEPTH} levels", path)
            if not os.path.exists(parent_file):
                raise DiskFormatError(f'the parent disk "{hint}" is missing ({parent_file})', child.path)
            parent = open_layer(parent_file)
            layers.append(parent)
            seen.add(os.path.realpath(parent_file))
            if parent.descriptor.cid != child.descriptor.parent_cid:
                raise DiskFormatError(
                    f"snapshot chain broken: it expects parent CID {child.descriptor.parent_cid:08x} but "
                    f"{parent_file} has CID {parent.descriptor.cid:08x} (the parent changed after the snapshot)",
                    child.path)
            if parent.capacity != child.capacity:
                raise DiskFormatError(
                    f"the parent {parent_file} holds {parent.capacity} bytes, the child {child.capacity}",
                    child.path)
            child = parent
    except BaseException:
        for layer in layers:
            layer.close()
        raise
    return ChainDisk(layers)
