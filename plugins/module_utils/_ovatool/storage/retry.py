# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Riding out outages: transfers to one destination retry until it has not answered for a window of seconds.

A long export meets network outages of a minute or more. Counting attempts cannot tell a blip from an outage;
a window can: every request to the destination shares one ``RetryWindow``; an answer resets it, a network error
or a 5xx/408/429 waits (exponential backoff from 0.5 s up to 30 s, with jitter, so that parts in flight do not
retry in step) and tries again, until the destination has been silent for ``seconds`` since its last answer.
"""
from __future__ import annotations

import random
import threading
import time
from typing import Callable, Optional, TypeVar

from ..defaults import RETRY_SECONDS
from ..errors import OvatoolError

T = TypeVar("T")


class RetryWindow:
    """When to try again: until ``seconds`` have passed since the destination last answered."""

    def __init__(self, seconds: float = RETRY_SECONDS, on_wait: Optional[Callable[[float], None]] = None,
                 base: float = 0.5, cap: float = 30.0) -> None:
        self.seconds = max(0.0, float(seconds))
        self.on_wait = on_wait
        self.base = base
        self.cap = cap
        self.last = time.monotonic()
        self.lock = threading.Lock()
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        """Stop waiting: every pause ends now and says no (the transfer is being given up)."""
        self.cancelled.set()

    def answered(self) -> None:
        """The destination answered: the window starts again."""
        with self.lock:
            self.last = time.monotonic()

    def silent_for(self) -> float:
        with self.lock:
            return time.monotonic() - self.last

    def pause(self, attempt: int) -> bool:
        """Wait before attempt ``attempt + 1``; False (without waiting) when the window is over."""
        silent = self.silent_for()
        if silent >= self.seconds or self.cancelled.is_set():
            return False
        delay = min(self.cap, self.base * 2 ** min(attempt, 16)) * random.uniform(0.5, 1.0)  # nosec: jitter
        if self.on_wait is not None:
            self.on_wait(silent)
        return not self.cancelled.wait(min(delay, self.seconds - silent))


class Transient(Exception):
    """An attempt that may pass later: a network error, or a 5xx/408/429 answer. Its text is the reason."""


RETRY_STATUS = (408, 429)


def transient_status(status: int) -> bool:
    """An HTTP answer worth trying again: a server error, a request timeout, too many requests."""
    return status >= 500 or status in RETRY_STATUS


def retrying(window: RetryWindow, what: str, attempt: Callable[[], T], path: Optional[str] = None) -> T:
    """``attempt()`` until it returns, trying again after each ``Transient`` while ``window`` allows; a return
    restarts the window. Anything else ``attempt`` raises ends at once (a refusal is not an outage). Past the
    window: an OvatoolError about ``path`` naming ``what``, the last reason and how long the destination has been
    silent."""
    tries = 0
    while True:
        try:
            value = attempt()
        except Transient as exc:
            if not window.pause(tries):
                raise OvatoolError(f"{what} failed: {exc}; the destination has not answered for "
                                   f"{window.silent_for():.0f} s (retry_seconds {window.seconds:.0f})",
                                   path) from None
            tries += 1
            continue
        window.answered()
        return value
