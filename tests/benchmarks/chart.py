# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The benchmark as a picture: seconds per tool and setting, and peak memory beside it, as an SVG (standard library).

export_bench.py writes one beside its table (``chart.svg`` in its work folder). Run alone, it draws the chart of a
table the benchmark printed (a Markdown table with the columns format, run, codec, wall s ... peak RSS MiB):

    python tests/benchmarks/chart.py TABLE.md OUT.svg [--format monolithicSparse] [--title TEXT]
"""
from __future__ import annotations

import argparse
from typing import Dict, List, Optional, Sequence
from xml.sax.saxutils import escape

ROW = 22
LABEL = 330
BAR = 300
GAP = 40
MEMORY = 170
COLORS = {"qemu": "#9e9e9e", "vmdk-convert": "#c77c02", "export_all": "#2e7d32", "ovatool": "#1565c0"}


def _color(run: str) -> str:
    for prefix, color in COLORS.items():
        if run.startswith(prefix):
            return color
    return "#1565c0"


def parse_table(text: str, fmt: Optional[str] = None) -> List[Dict[str, str]]:
    """Rows of the first Markdown table in ``text`` whose header has "run" and "wall s"; ``fmt`` keeps one disk
    format's rows."""
    rows: List[Dict[str, str]] = []
    header: Optional[List[str]] = None
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.strip().startswith("|"):
            if rows:
                break
            header = None
            continue
        if header is None:
            if "run" in cells and "wall s" in cells:
                header = cells
            continue
        if set(line.replace("|", "").strip()) <= set("-: "):
            continue
        row = dict(zip(header, cells))
        if fmt is None or row.get("format", fmt) == fmt:
            rows.append(row)
    return rows


def svg(rows: Sequence[Dict[str, str]], title: str) -> str:
    """A bar per row: wall seconds on the left, peak RSS on the right."""
    seconds = [float(row["wall s"]) for row in rows]
    memory = [float(row.get("peak RSS MiB") or 0) for row in rows]
    top_s, top_m = max(seconds) or 1.0, max(memory) or 1.0
    width = LABEL + BAR + GAP + MEMORY + 60
    height = 60 + ROW * len(rows) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
           f'<text x="{LABEL}" y="44" fill="#333">wall seconds (shorter is faster)</text>',
           f'<text x="{LABEL + BAR + GAP}" y="44" fill="#333">peak RSS, MiB</text>']
    for index, (row, wall, rss) in enumerate(zip(rows, seconds, memory)):
        y = 52 + index * ROW
        label = row["run"] + (f" ({row['codec']})" if row.get("codec") else "")
        color = _color(row["run"])
        out.append(f'<text x="{LABEL - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        length = max(1.0, BAR * wall / top_s)
        out.append(f'<rect x="{LABEL}" y="{y + 3}" width="{length:.1f}" height="{ROW - 7}" fill="{color}"/>')
        out.append(f'<text x="{LABEL + length + 4:.1f}" y="{y + 14}">{wall:g}</text>')
        length = max(1.0, MEMORY * rss / top_m)
        out.append(f'<rect x="{LABEL + BAR + GAP}" y="{y + 3}" width="{length:.1f}" height="{ROW - 7}" '
                   f'fill="{color}" fill-opacity="0.55"/>')
        out.append(f'<text x="{LABEL + BAR + GAP + length + 4:.1f}" y="{y + 14}">{rss:g}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", help="a file holding the benchmark's Markdown table")
    parser.add_argument("out", help="the SVG to write")
    parser.add_argument("--format", default=None, help="only the rows of this disk format")
    parser.add_argument("--title", default="Export of the benchmark disk: time and memory")
    args = parser.parse_args()
    with open(args.table, encoding="utf-8") as handle:
        rows = parse_table(handle.read(), args.format)
    if not rows:
        raise SystemExit(f"no benchmark table (columns run, wall s) in {args.table}")
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(svg(rows, args.title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
