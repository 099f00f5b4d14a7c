# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller brings ISA-L and zlib-ng to hosts whose Python has only the standard library (a venv without
pip, as on ESXi): from a wheelhouse folder on the controller, over real SSH, with nothing installed on the host.

The wheels are the real ones from the package index (``pip download`` on the controller, once per test run); the
host's Python cannot import them by itself (the bare_python fixture checks that), so the export's ``codec`` in
the result proves where they came from."""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from support import ovacheck, servers, vmfactory
from support.ansiblerun import BIN, ROOT, adhoc, ansible_env

pytestmark = pytest.mark.xdist_group(name="servers")
TAG = f"{sys.version_info[0]}.{sys.version_info[1]}"


def pip_download(folder: str, *platform_args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                           "--only-binary=:all:", "-d", folder, "--python-version", TAG, "--implementation", "cp",
                           *platform_args, "isal", "zlib-ng"], capture_output=True, universal_newlines=True,
                          check=False)
    if done.returncode != 0:
        pytest.fail(f"pip download of the wheels failed (the tests need the package index):\n{done.stderr[-2000:]}",
                    pytrace=False)


@pytest.fixture(scope="session")
def wheelhouses(tmp_path_factory):
    """good: isal and zlib-ng for this interpreter and machine; foreign: the same for another machine; corrupt:
    good's wheels with a damaged member (same names)."""
    root = tmp_path_factory.mktemp("wheelhouses")
    good, foreign, corrupt = (str(root / name) for name in ("good", "foreign", "corrupt"))
    pip_download(good)
    other = "aarch64" if os.uname().machine != "aarch64" else "x86_64"
    pip_download(foreign, "--platform", f"manylinux2014_{other}")
    os.makedirs(corrupt)
    for wheel in glob.glob(os.path.join(good, "*.whl")):
        data = bytearray(open(wheel, "rb").read())
        data[len(data) // 3] ^= 0xFF  # inside a member's compressed data: the zip's CRC check fails
        with open(os.path.join(corrupt, os.path.basename(wheel)), "wb") as handle:
            handle.write(data)
    assert len(os.listdir(good)) == 2 and len(os.listdir(foreign)) == 2
    return {"good": good, "foreign": foreign, "corrupt": corrupt}


@pytest.fixture()
def hosts(tmp_path, images, bare_python):
    """Two sshd hosts on loopback whose Python is the bare one, each with a VM of its own."""
    if shutil.which("ssh") is None:
        pytest.fail("the ssh client is not installed (openssh-client)", pytrace=False)
    started, layout = [], {}
    try:
        for name in ("esx1", "esx2"):
            sshd = servers.Sshd(str(tmp_path / f"{name}-sshd"))
            started.append(sshd)
            vms = tmp_path / name / "vms" / "app"
            vms.mkdir(parents=True)
            vmfactory.convert(images["odd"], str(vms / "app.vmdk"), "monolithicSparse")
            vmfactory.write_vmx(str(vms / "app.vmx"), f"{name} app", [("scsi0:0", "app.vmdk")])
            layout[name] = {"sshd": sshd, "root": tmp_path / name}
        yield layout
    finally:
        for sshd in started:
            sshd.close()


def play(tmp_path, hosts, bare_python, extra: dict, only=None) -> subprocess.CompletedProcess:
    inventory = {"all": {"hosts": {}, "vars": {
        "ansible_user": "root", "ansible_python_interpreter": bare_python,
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ovatool_manage_power": False, "ovatool_poll_seconds": 1}}}
    for name, host in hosts.items():
        if only and name not in only:
            continue
        inventory["all"]["hosts"][name] = {
            "ansible_host": "127.0.0.1", "ansible_port": host["sshd"].port,
            "ansible_ssh_private_key_file": host["sshd"].client_key,
            "ovatool_vm_search_paths": [str(host["root"] / "vms")], "ovatool_output_dir": str(host["root"] / "ova"),
            "ovatool_accelerator_dir": str(host["root"] / "state")}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    env = ansible_env(tmp_path)
    env["XDG_CACHE_HOME"] = str(tmp_path / "controller-cache")  # no wheels left from other tests
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(path), "playbooks/export_all.yml",
                           "-f", "5", "-e", json.dumps(dict({"ovatool_wheel_download": False}, **extra))],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env,
                          cwd=ROOT, timeout=900, check=False)


def codecs_used(out: str) -> dict:
    """host -> the codec its export ran with, from the role's "exported to" lines."""
    return dict(re.findall(r"(esx\d) \| .*?: exported to .*? \((\S+) level \d\)", out))


def accel_task(out: str) -> str:
    """The output of the accelerator task (status lines and warnings) of the playbook run."""
    start = out.index("Bring the accelerator")
    return out[start:out.index("TASK [", start)]


def test_wheelhouse_brings_isal_and_a_second_run_copies_nothing(tmp_path, hosts, bare_python, wheelhouses, images):
    first = play(tmp_path, hosts, bare_python, {"ovatool_wheelhouse": wheelhouses["good"]})
    assert first.returncode == 0, first.stdout
    assert codecs_used(first.stdout) == {"esx1": "isal", "esx2": "isal"}, first.stdout
    assert re.search(r"changed: \[esx1\]", accel_task(first.stdout)), first.stdout
    assert re.search(r'"codec": \{\s*"[^"]+/esx1_app\.ova": "isal"', first.stdout), first.stdout  # the summary
    for name, host in hosts.items():
        accel = glob.glob(str(host["root"] / "state" / ".accel" / "*"))
        assert len(accel) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", os.path.basename(p)) for p in accel), accel
        assert not glob.glob(str(host["root"] / "state" / ".accel" / ".unpack-*"))
        ova = str(host["root"] / "ova" / f"{name}_app.ova")
        ovacheck.assert_same_disk(images["odd"], ovacheck.extract(ova, f"{name}_app-disk1.vmdk", str(tmp_path)))
    probe = subprocess.run([bare_python, "-c", "import isal"], capture_output=True, check=False)
    assert probe.returncode != 0, "the host Python itself must not have ISA-L: nothing was installed into it"

    second = play(tmp_path, hosts, bare_python, {"ovatool_wheelhouse": wheelhouses["good"], "ovatool_force": True})
    assert second.returncode == 0, second.stdout
    task = accel_task(second.stdout)
    assert re.search(r"ok: \[esx1\]", task) and re.search(r"ok: \[esx2\]", task) and "changed" not in task, task
    assert codecs_used(second.stdout) == {"esx1": "isal", "esx2": "isal"}, second.stdout


@pytest.mark.parametrize("house", ["foreign", "corrupt"])
def test_unusable_wheels_export_with_the_standard_library_and_one_warning(tmp_path, hosts, bare_python, wheelhouses,
                                                                          house):
    done = play(tmp_path, hosts, bare_python, {"ovatool_wheelhouse": wheelhouses[house]}, only=["esx1"])
    assert done.returncode == 0, done.stdout
    assert codecs_used(done.stdout) == {"esx1": "zlib"}, done.stdout
    task = accel_task(done.stdout)
    warnings = re.findall(r"\[WARNING\]: (.*)", task)
    assert len(warnings) == 1 and "no accelerator for this host" in warnings[0], task
    assert ("no isal wheel for CPython" in task) if house == "foreign" else ("fails its CRC check" in task), task
    assert not os.path.exists(hosts["esx1"]["root"] / "state" / ".accel")


def test_required_accelerator_fails_the_host_before_anything_is_written(tmp_path, hosts, bare_python, wheelhouses):
    done = play(tmp_path, hosts, bare_python, {"ovatool_wheelhouse": wheelhouses["foreign"],
                                               "ovatool_accelerator": True}, only=["esx1"])
    assert done.returncode != 0, done.stdout
    assert re.search(r"fatal: \[esx1\]: FAILED! => .*no isal wheel for CPython", done.stdout), done.stdout
    out = hosts["esx1"]["root"] / "ova"
    assert not os.path.exists(hosts["esx1"]["root"] / "state" / ".accel") and not glob.glob(str(out / "*.ova"))


def test_accelerator_false_uses_what_the_host_has(tmp_path, hosts, bare_python, wheelhouses):
    done = play(tmp_path, hosts, bare_python, {"ovatool_wheelhouse": wheelhouses["good"],
                                               "ovatool_accelerator": False}, only=["esx1"])
    assert done.returncode == 0, done.stdout
    assert codecs_used(done.stdout) == {"esx1": "zlib"}, done.stdout
    assert "skipping: [esx1]" in accel_task(done.stdout)
    assert not os.path.exists(hosts["esx1"]["root"] / "state" / ".accel")


def test_two_runs_unpacking_into_one_folder_at_once(tmp_path, wheelhouses, bare_python):
    """Eight ova_accelerator runs on one host at once, into the same state dir: each ends with both codecs,
    the folder holds exactly the two wheels, each whole, and no temporary folder."""
    state = tmp_path / "state"
    playbook = tmp_path / "accel.yml"
    playbook.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": [
        {"ovatool.vmware.ova_accelerator": {"state_dir": str(state), "wheelhouse": wheelhouses["good"],
                                            "download": False}, "register": "accel"},
        {"ansible.builtin.assert": {"that": ["accel.codecs == ['isal', 'zlib-ng']"]}}]}]))
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("".join(f"h{n} ansible_connection=local ansible_python_interpreter={bare_python}\n"
                                 for n in range(8)))
    done = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inventory), str(playbook), "-f", "8"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=ansible_env(tmp_path), cwd=ROOT, timeout=600, check=False)
    assert done.returncode == 0, done.stdout
    assert sorted(os.listdir(state / ".accel")) == sorted(
        __import__("hashlib").sha256(open(w, "rb").read()).hexdigest()
        for w in glob.glob(os.path.join(wheelhouses["good"], "*.whl")))
    for folder in (state / ".accel").iterdir():
        check = subprocess.run([bare_python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import isal, zlib_ng",
                                str(folder)], capture_output=True, check=False)
        assert check.returncode == 0 or b"No module named" in check.stderr, check.stderr


@pytest.mark.parametrize("required", [False, True])
def test_a_host_that_refuses_foreign_shared_objects(tmp_path, wheelhouses, bare_python, required):
    """A state dir on a noexec mount stands in for ESXi 8's execInstalledOnly: the wheels unpack, but their shared
    objects cannot be mapped. auto: one warning saying so, no codec, nothing left; required: the task fails."""
    state = tmp_path / "noexec"
    state.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,size=64m", "tmpfs", str(state)],
                             capture_output=True, universal_newlines=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a noexec tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        result = adhoc(tmp_path, "ovatool.vmware.ova_accelerator",
                       {"state_dir": str(state), "wheelhouse": wheelhouses["good"], "download": False,
                        "required": required}, python=bare_python)
        assert "failed to map segment from shared object" in result["_stdout"], result["_stdout"]
        if required:
            assert result["_rc"] != 0 and "it is required" in result["msg"], result["_stdout"]
        else:
            assert result["_rc"] == 0 and result["codecs"] == [] and result["changed"] is False, result["_stdout"]
            warnings = re.findall(r"\[WARNING\]: (.*)", result["_stdout"])
            assert len(warnings) == 1 and "does not load here" in warnings[0], result["_stdout"]
        assert os.listdir(state) == []
    finally:
        subprocess.run(["umount", str(state)], check=False)
