# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``ovatool`` command as users run it: installed by ``pip install .``, run as a subprocess."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios

import pytest

from support import vmfactory
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm
from support.ansiblerun import adhoc

OVATOOL = shutil.which("ovatool", path=os.path.dirname(sys.executable)) or shutil.which("ovatool")


def ovatool(*args: str, **kwargs) -> subprocess.CompletedProcess:
    if OVATOOL is None:
        pytest.fail("the ovatool command is not installed (scripts/test.sh runs pip install .)", pytrace=False)
    return subprocess.run([OVATOOL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False, timeout=300, **kwargs)


@pytest.fixture()
def vm(tmp_path, images):
    folder = tmp_path / "vm"
    folder.mkdir()
    vmfactory.convert(images["gappy"], str(folder / "a.vmdk"), "monolithicSparse")
    vmfactory.convert(images["odd"], str(folder / "b.vmdk"), "twoGbMaxExtentFlat")
    vmx = vmfactory.write_vmx(str(folder / "cli.vmx"), "Cli VM", [("scsi0:0", "a.vmdk"), ("scsi0:1", "b.vmdk")])
    out = tmp_path / "out"
    out.mkdir()
    return {"vmx": vmx, "out": str(out)}


def test_command_output_equals_the_module_output(vm, tmp_path):
    # a deterministic codec: ISA-L may encode a grain differently from run to run (docs/formats.md)
    done = ovatool("export", vm["vmx"], "-o", os.path.join(vm["out"], "cli.ova"), "--json", "--manifest", "sha512",
                   "--codec", "zlib-ng")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["changed"] and result["manifest"] == "sha512"
    module = adhoc(tmp_path, "ovatool.vmware.ova_export",
                   {"src": vm["vmx"], "dest": os.path.join(vm["out"], "module.ova"), "manifest": "sha512",
                    "codec": "zlib-ng"})
    assert module["_rc"] == 0, module["_stdout"]
    with open(result["dest"], "rb") as a, open(module["dest"], "rb") as b:
        assert a.read() == b.read(), "same VM, same options: the same bytes (reproducible output)"
    assert set(result) - {"_stdout", "_rc"} >= {"dest", "size", "digests", "disks", "codec", "threads"}


def test_verify_command(vm):
    ova = os.path.join(vm["out"], "v.ova")
    assert ovatool("export", vm["vmx"], "-o", ova, "-q").returncode == 0
    good = ovatool("verify", ova, "--deep")
    assert good.returncode == 0 and "OK" in good.stdout, good.stdout + good.stderr
    with open(ova, "r+b") as handle:
        handle.seek(os.path.getsize(ova) // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0x55]))
    bad = ovatool("verify", ova)
    assert bad.returncode == 1 and "differs from the manifest" in bad.stdout
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("ovatool: error:")


def test_exit_codes_and_one_line_errors(vm, tmp_path):
    assert ovatool("export").returncode == 2
    assert ovatool("frobnicate").returncode == 2
    assert ovatool("export", vm["vmx"], "-o", vm["out"] + "/", "--codec", "lzma").returncode == 2
    missing = ovatool("export", str(tmp_path / "nope.vmx"), "-o", vm["out"] + "/")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "nope.vmx" in missing.stderr and "Traceback" not in missing.stderr
    assert os.listdir(vm["out"]) == []


def test_info_command(vm):
    done = ovatool("info", vm["vmx"], "--allocation")
    assert done.returncode == 0 and "Cli VM" in done.stdout and "monolithicSparse" in done.stdout
    info = json.loads(ovatool("info", vm["vmx"], "--json").stdout)
    assert [d["controller"] for d in info["disks"]] == ["scsi0", "scsi0"]


def test_progress_plain_lines_when_not_a_terminal(vm):
    done = ovatool("export", vm["vmx"], "-o", vm["out"] + "/")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert any(line.startswith("Cli_VM-disk1.vmdk:") and "100.0%" in line and "MB/s" in line for line in lines), lines
    assert any(line.startswith("Cli_VM-disk2.vmdk:") for line in lines), lines
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    assert done.stdout.startswith(os.path.join(vm["out"], "Cli_VM.ova"))
    quiet = ovatool("export", vm["vmx"], "-o", vm["out"] + "/", "--force", "--quiet")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_progress_bars_on_a_terminal(vm):
    if OVATOOL is None:
        pytest.fail("the ovatool command is not installed", pytrace=False)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a real terminal has a size
    proc = subprocess.Popen([OVATOOL, "export", vm["vmx"], "-o", vm["out"] + "/"],  # pylint: disable=consider-using-with
                            stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    screen = b""
    while True:
        ready, _w, _x = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert proc.wait(60) == 0
    proc.stdout.close()
    text = screen.decode("utf-8", "replace")
    assert "Cli_VM-disk1.vmdk" in text and "Cli_VM-disk2.vmdk" in text, text
    assert "\r" in text and "B/s" in text, text  # a redrawn bar with a rate


def test_command_file_upload(vm, tmp_path):
    ova = os.path.join(vm["out"], "u.ova")
    assert ovatool("export", vm["vmx"], "-o", ova, "-q").returncode == 0
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    first = ovatool("upload", ova, f"file://{shelf}/u.ova", "--json")
    assert first.returncode == 0 and json.loads(first.stdout)["changed"] is True
    second = ovatool("upload", ova, f"file://{shelf}/u.ova")
    assert second.returncode == 0 and "already holds" in second.stdout


def test_engine_and_command_agree_on_names(vm):
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/", check_mode=True))
    done = ovatool("export", vm["vmx"], "-o", vm["out"] + "/", "--check")
    assert done.returncode == 0 and result["dest"] in done.stdout


def test_ctrl_c_stops_cleanly(tmp_path):
    """SIGINT (Ctrl-C) mid-export: exit 1, one line on stderr, no partial output."""
    import signal
    import time

    folder = tmp_path / "slow"
    folder.mkdir()
    with open(folder / "noise.raw", "wb") as handle:
        for _mib in range(96):
            handle.write(os.urandom(1024 * 1024))
    vmfactory.convert(str(folder / "noise.raw"), str(folder / "slow.vmdk"), "monolithicSparse")
    os.unlink(folder / "noise.raw")
    vmx = vmfactory.write_vmx(str(folder / "slow.vmx"), "Slow", [("scsi0:0", "slow.vmdk")])
    out = tmp_path / "out"
    out.mkdir()
    if OVATOOL is None:
        pytest.fail("the ovatool command is not installed", pytrace=False)
    # SIGINT as a terminal delivers it, even where the test run itself was started with SIGINT ignored (a
    # background job of a shell without job control): Python then installs its KeyboardInterrupt handler
    proc = subprocess.Popen([OVATOOL, "export", vmx, "-o", str(out) + "/", "--codec", "zlib", "--compression", "max",  # pylint: disable=consider-using-with
                             "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # pylint: disable=subprocess-popen-preexec-fn
    assert proc.stderr.readline().startswith(b"Slow-disk1.vmdk:"), "no progress line: the export did not start"
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 1
    assert err.decode().strip().splitlines()[-1] == "ovatool: interrupted; nothing was left at the destination"
    assert os.listdir(str(out)) == []
