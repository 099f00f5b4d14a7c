# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The retry window of transfers: requests go on until the destination has been silent for the window, an answer
starts it again, backoff grows with jitter, and giving up (cancel) ends every wait at once. A real HTTP server on
loopback that refuses, then fails, then answers is the destination."""
from __future__ import annotations

import http.server
import threading
import time

import pytest

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.presigned import Link, request
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.retry import RetryWindow


class Flaky(http.server.BaseHTTPRequestHandler):
    answers = []  # status codes to answer, in turn; 200 once they run out

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = Flaky.answers.pop(0) if Flaky.answers else 200
        self.send_response(status)
        self.send_header("ETag", '"e"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/part"
    httpd.shutdown()


def test_server_errors_are_retried_until_an_answer(server):
    Flaky.answers = [503, 500, 429]
    waited = []
    window = RetryWindow(30, on_wait=waited.append, base=0.05)
    status = request("PUT", server, lambda: b"x", 1, "part 1", Link(5, True, window))[0]
    assert status == 200 and len(waited) == 3 and Flaky.answers == []


def test_a_refusal_is_not_retried(server):
    Flaky.answers = [403]
    window = RetryWindow(30, base=0.05)
    with pytest.raises(OvatoolError, match="403"):
        request("PUT", server, lambda: b"x", 1, "part 1", Link(5, True, window))


def test_a_silent_destination_fails_after_the_window():
    window = RetryWindow(1.5, base=0.05, cap=0.2)
    began = time.monotonic()
    with pytest.raises(OvatoolError, match=r"has not answered for \d+ s \(retry_seconds 2\)"):
        request("PUT", "http://127.0.0.1:9/part", lambda: b"x", 1, "part 1", Link(1, True, window))
    assert 1.4 < time.monotonic() - began < 10


def test_cancel_ends_the_wait_at_once():
    window = RetryWindow(600, base=60, cap=60)
    threading.Timer(0.3, window.cancel).start()
    began = time.monotonic()
    assert window.pause(0) is False
    assert time.monotonic() - began < 5
