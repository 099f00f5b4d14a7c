# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Names from VMX files made safe to become file and archive member names."""
from __future__ import annotations

import re
import unicodedata

MAX_BASE = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, fallback: str = "vm") -> str:
    """A portable file name stem: ASCII letters, digits, ``.``, ``_``, ``-`` only.

    Accents are folded (``é`` -> ``e``), everything else becomes ``_``; no
    leading dot, no ``..``, never empty, at most 64 characters, so the
    archive members stay within the 100-byte USTAR name field.
    """
    folded = unicodedata.normalize("NFKD", text or "")
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    cleaned = _UNSAFE.sub("_", folded)
    cleaned = re.sub(r"\.{2,}", "_", cleaned).strip("._-")[:MAX_BASE].strip("._-")
    if cleaned:
        return cleaned
    if fallback and fallback != text:
        return safe_name(fallback, "vm")
    return "vm"
