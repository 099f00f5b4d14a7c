# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The benchmark's chart (tests/benchmarks/chart.py): drawn from the table the benchmark prints, and the one the
README and the performance guide show is the README's table of the last measured run."""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from benchmarks import chart
from support.ansiblerun import ROOT

TITLE = "4 GiB disk, 1.53 GiB of real files (monolithicSparse), 2 cores, 2026-12-06: time and peak memory"
SVG = "{http://www.w3.org/2000/svg}"


def test_a_bar_per_run_for_time_and_memory():
    table = ("| format | run | codec | wall s | peak RSS MiB |\n|---|---|---|---:|---:|\n"
             "| flat | qemu-img convert | zlib 6 | 50.0 | 37 |\n| sparse | ovatool default | isal 2 | 4.1 | 68 |\n"
             "| flat | ovatool default | isal 2 | 3.6 | 70 |\n")
    rows = chart.parse_table("text before\n" + table + "\nafter", "flat")
    assert [(r["run"], r["wall s"]) for r in rows] == [("qemu-img convert", "50.0"), ("ovatool default", "3.6")]
    root = ET.fromstring(chart.svg(rows, "t < & >"))
    bars = [float(rect.get("width")) for rect in root.iter(f"{SVG}rect")][1:]  # the background first
    # seconds and memory, each scaled to its largest (50 s, 70 MiB)
    assert bars == pytest.approx([300.0, 170.0 * 37 / 70, 300.0 * 3.6 / 50, 170.0], abs=0.05)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "t < & >" in texts and "3.6" in texts and "37" in texts


def test_the_readme_chart_is_the_readmes_table():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        rows = chart.parse_table(handle.read(), "monolithicSparse")
    assert len(rows) >= 10 and rows[0]["run"] == "qemu-img convert"
    with open(os.path.join(ROOT, "docs", "benchmark.svg"), encoding="utf-8") as handle:
        assert handle.read() == chart.svg(rows, TITLE), "docs/benchmark.svg is not the README's table: redraw it " \
            "with tests/benchmarks/chart.py"
