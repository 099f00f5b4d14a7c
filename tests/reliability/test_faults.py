# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile input, injected faults and security checks: a clear answer, nothing half-written, sources intact."""
from __future__ import annotations

import glob
import json
import os
import re
import signal
import tarfile
import struct
import subprocess
import sys
import time

import pytest

from support import ovacheck, vmfactory
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool import fileio
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import ExportOptions, export_vm
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.verify import verify
from support.sources import fails_cleanly, patch, snapshot, sparse_layout

pytestmark = pytest.mark.reliability
from support.ansiblerun import ROOT  # noqa: E402
MiB = 1024 * 1024


@pytest.fixture()
def vm(sparse_vm):
    return sparse_vm


# -- hostile VMDK metadata ---------------------------------------------------------------------------
def test_truncated_sparse_file(vm):
    with open(vm["disk"], "r+b") as handle:
        handle.truncate(os.path.getsize(vm["disk"]) // 3)
    fails_cleanly(vm, vm["disk"], "past the end of the file")


def test_grain_pointing_into_the_header(vm):
    gt_sector, table = sparse_layout(vm["disk"])[1:]
    slot = next(i for i, entry in enumerate(table) if entry)
    patch(vm["disk"], gt_sector * 512 + slot * 4, struct.pack("<I", 3))
    fails_cleanly(vm, vm["disk"], "points into the header")


@pytest.mark.parametrize("field,value,message", [
    (20, 0, "invalid grain size"), (20, 1 << 40, "invalid grain size"), (44, 0, "grain table entries"),
    (12, 1 << 62, "absurd capacity"), (12, 1 << 38, "absurd capacity"),
])
def test_absurd_header_fields(vm, field, value, message):
    """Absurd values are refused before anything is allocated for them (no huge grain directory)."""
    patch(vm["disk"], field, struct.pack("<Q" if field in (12, 20) else "<I", value))
    fails_cleanly(vm, vm["disk"], message)


def test_descriptor_extents_that_do_not_add_up(vm, images):
    vmfactory.convert(images["odd"], os.path.join(vm["folder"], "split.vmdk"), "twoGbMaxExtentSparse")
    descriptor = os.path.join(vm["folder"], "split.vmdk")
    with open(descriptor) as handle:
        text = handle.read()
    with open(descriptor, "w") as handle:
        handle.write(re.sub(r"RW (\d+) SPARSE", lambda m: f"RW {int(m.group(1)) * 4} SPARSE", text))
    vmfactory.write_vmx(vm["vmx"], "Bad Input", [("scsi0:0", "split.vmdk")])
    fails_cleanly(vm, "split-s001.vmdk", "declares", "but the extent holds")


def test_absurd_zero_extent_does_not_allocate(vm):
    huge = os.path.join(vm["folder"], "huge.vmdk")
    with open(huge, "w") as handle:
        handle.write('# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\nRW 999999999999999999 ZERO\n')
    vmfactory.write_vmx(vm["vmx"], "Bad Input", [("scsi0:0", "huge.vmdk")])
    fails_cleanly(vm, huge, "absurd capacity")


# -- hostile VMX --------------------------------------------------------------------------------------
def test_huge_vmx_line(vm):
    with open(vm["vmx"], "ab") as handle:
        handle.write(b'annotation = "' + b"x" * (20 * MiB) + b'"\n')
    fails_cleanly(vm, vm["vmx"], "not a VMX file")


def test_thousands_of_keys_and_unknown_devices(vm):
    with open(vm["vmx"], "a") as handle:
        for i in range(5000):
            handle.write(f'custom.key{i} = "{i}"\nfrobnicator{i}.present = "TRUE"\n')
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/"))
    assert result["changed"] and len(result["disks"]) == 1


def test_vm_without_disks_is_a_valid_ova(vm, xsd):
    """Decision: a VM with no disk exports to an OVA with no DiskSection (valid OVF, VMware imports it)."""
    vmfactory.write_vmx(vm["vmx"], "Diskless", [])
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/"))
    ova = ovacheck.read_ova(result["dest"])
    assert ova["names"] == ["Diskless.ovf", "Diskless.mf"]
    xsd.validate(ova["ovf"].decode())
    assert verify(result["dest"], require_manifest=True)["ok"]


@pytest.mark.parametrize("name", ["../../etc/cron.d/evil", "a/b", "nul\x00x", "ctl\x1b[31m", "<x>&'\"",
                                  "é" * 200, "..", "/"])
def test_hostile_display_names(vm, name):
    with open(vm["vmx"], "a") as handle:
        handle.write('displayName = "' + name.replace("\x00", "|00").replace('"', "|22") + '"\n')
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/"))
    assert os.path.dirname(result["dest"]) == vm["out"]
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.ova", os.path.basename(result["dest"]))
    ova = ovacheck.read_ova(result["dest"])  # parses: the OVF is well-formed whatever the name
    text = ova["envelope"].find(".//{%s}VirtualSystem/{%s}Name" % (ovacheck.OVF_NS, ovacheck.OVF_NS)).text
    assert text == name.replace("\x00", "\ufffd").replace("\x1b", "\ufffd")


# -- faults ---------------------------------------------------------------------------------------------
def test_read_error_mid_disk(vm, monkeypatch):
    """An I/O error from the source half-way through: a clear error naming the file, no partial output."""
    real = fileio.pread_into
    calls = {"n": 0}

    def failing(fd, view, offset):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(5, "Input/output error")
        return real(fd, view, offset)

    monkeypatch.setattr(fileio, "pread_into", failing)
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.formats import sparse
    monkeypatch.setattr(sparse, "pread_into", failing)
    message = fails_cleanly(vm, vm["disk"], "input/output error")
    assert "read error at byte" in message


def test_destination_fills_up(vm, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.decode().strip()}); needs root")
    try:
        with pytest.raises(OvatoolError, match="no space left on the device"):
            export_vm(ExportOptions(src=vm["vmx"], dest=str(mount) + "/"))
        assert os.listdir(str(mount)) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _slow_vm(tmp_path):
    """A VM big enough (incompressible data, zlib, one thread) that a signal lands mid-export."""
    return vmfactory.noise_vm(str(tmp_path / "slow"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_export_leaves_nothing(tmp_path, signum):
    vmx = _slow_vm(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    before = snapshot(os.path.dirname(vmx))
    # SIGINT raises KeyboardInterrupt even where this test run was started with SIGINT ignored
    script = ("import signal, sys;"
              "signal.signal(signal.SIGINT, signal.default_int_handler);"
              "from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import *;"
              "export_vm(ExportOptions(src=sys.argv[1], dest=sys.argv[2], codec='zlib', compression='max',"
              " threads=1, progress=lambda e: print('progress', flush=True)))")
    proc = subprocess.Popen([sys.executable, "-c", script, vmx, str(out) + "/"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"progress"), "the export did not start"
    time.sleep(0.3)
    proc.send_signal(signum)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode != 0
    assert b"stopped by signal SIGTERM" in err or b"KeyboardInterrupt" in err, err[-500:]
    assert os.listdir(str(out)) == [], "a partial file was left behind"
    assert snapshot(os.path.dirname(vmx)) == before


def test_two_exports_to_the_same_destination(vm):
    """Both finish; the result is one complete, valid OVA, never a mix; no temporary file remains."""
    dest = os.path.join(vm["out"], "same.ova")
    script = ("import sys;"
              "from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import *;"
              "export_vm(ExportOptions(src=sys.argv[1], dest=sys.argv[2], force=True, threads=1))")
    procs = [subprocess.Popen([sys.executable, "-c", script, vm["vmx"], dest]) for _copy in range(2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    assert sorted(os.listdir(vm["out"])) == [".same.ova.source", "same.ova"]
    assert verify(dest, deep=True, require_manifest=True)["ok"]


EXPORT_SCRIPT = ("import json, sys;"
                 "from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.export.run import *;"
                 "r = export_vm(ExportOptions(src=sys.argv[1], dest=sys.argv[2], codec='zlib', compression='max',"
                 " threads=1, refresh=True, progress=lambda e: print('progress', flush=True)));"
                 "print(json.dumps({k: r.get(k) for k in ('changed', 'current', 'warnings')}), flush=True)")


def _start_export(vmx: str, dest: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", EXPORT_SCRIPT, vmx, dest], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_second_export_waits_for_the_running_one(tmp_path):
    """A run started while an earlier export of the same VM still writes (its SSH connection dropped, a scheduler
    fired twice) waits for it and finds the OVA current instead of writing it a second time at once."""
    vmx = _slow_vm(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    first = _start_export(vmx, str(out) + "/")
    assert first.stdout.readline().startswith(b"progress"), "the first export did not start"
    first.send_signal(signal.SIGSTOP)  # hold it mid-export while the second one starts
    try:
        second = _start_export(vmx, str(out) + "/")
        deadline = time.monotonic() + 30
        while not glob.glob(str(out / ".Slow.ova.lock")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        assert second.poll() is None, "the second export did not wait"
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(120) == 0
    lines = second.communicate(timeout=120)[0].decode().splitlines()
    assert second.returncode == 0
    answer = json.loads(lines[-1])
    assert answer["changed"] is False and answer["current"] is True, answer
    assert any("another export of" in w and "is running" in w for w in answer["warnings"]), answer
    assert sorted(os.listdir(str(out))) == [".Slow.ova.source", "Slow.ova"], "no lock or temporary file remains"
    assert verify(str(out / "Slow.ova"), deep=True, require_manifest=True)["ok"]


def test_killed_export_leftovers_are_removed_by_the_next(tmp_path):
    """SIGKILL (async's time limit, the OOM killer) leaves the hidden temporary file behind - nothing can catch
    it; it never has the OVA's name, and the next export of the same OVA removes it."""
    vmx = _slow_vm(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    proc = _start_export(vmx, str(out) + "/")
    assert proc.stdout.readline().startswith(b"progress"), "the export did not start"
    proc.kill()
    proc.communicate(timeout=60)
    left = [n for n in os.listdir(str(out)) if n.endswith(".partial")]
    assert len(left) == 1 and not os.path.exists(str(out / "Slow.ova"))
    result = export_vm(ExportOptions(src=vmx, dest=str(out) + "/", threads=1))
    assert any(left[0] in w and "killed" in w for w in result["warnings"]), result["warnings"]
    assert sorted(os.listdir(str(out))) == [".Slow.ova.source", "Slow.ova"]
    # the appliance is still named as the VMX names it, not after the leftover it removed
    assert result["name"] == "Slow" and result["dest"] == str(out / "Slow.ova"), result
    with tarfile.open(str(out / "Slow.ova")) as archive:
        names = archive.getnames()
        descriptor = archive.extractfile(names[0]).read().decode()
    assert names[:3] == ["Slow.ovf", "Slow.mf", "Slow-disk1.vmdk"], names
    assert "<ovf:Name>Slow</ovf:Name>" in descriptor
    assert ".partial" not in descriptor


def test_output_permissions(vm):
    result = export_vm(ExportOptions(src=vm["vmx"], dest=vm["out"] + "/"))
    assert os.stat(result["dest"]).st_mode & 0o777 == 0o644


# -- security review ----------------------------------------------------------------------------------
def test_no_shell_anywhere():
    code = []
    for pattern in ("plugins/**/*.py", "src/**/*.py", "tests/**/*.py"):
        code += glob.glob(os.path.join(ROOT, pattern), recursive=True)
    offenders = []
    for path in code:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(", text) and not path.endswith("test_faults.py"):
            offenders.append(path)
    assert offenders == []


def test_secrets_are_no_log():
    for module in ("ova_upload", "ova_export"):
        with open(os.path.join(ROOT, "plugins", "modules", f"{module}.py"), encoding="utf-8") as handle:
            text = handle.read()
        for secret in re.findall(r"(\w*(?:secret|password|passphrase|token)\w*)=dict\(", text):
            assert re.search(rf"{secret}=dict\([^)]*no_log=True", text), f"{module}.{secret} is not no_log"


def test_tls_is_verified_by_default():
    from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.upload import UploadOptions

    assert UploadOptions(src="x", dest="y").validate_certs is True
    assert UploadOptions(src="x", dest="y").host_key_checking is True
