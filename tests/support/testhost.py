# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hypervisor test hosts for the Molecule scenarios (extensions/molecule/), run as ``python -m support.testhost``
from ``tests/``: ``create DIR NAME...`` starts one
sshd on loopback per NAME (throwaway keys, root by key), each with a VM folder - ``app`` (running, monolithicSparse)
and ``db`` (off, monolithicFlat) - and a vmrun double; it writes Molecule's instance_config.yml and
``DIR/NAME.yml`` (the paths, for the scenario's playbooks). ``destroy DIR`` stops them and removes DIR."""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import sys

from support import doubles, servers, vmfactory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MiB = 1024 * 1024


def small_raw(path: str, size: int = 24 * MiB) -> str:
    """Data at the start, the middle and the last sector; holes elsewhere."""
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset in (0, size // 2, size - 512):
            handle.seek(offset)
            handle.write(os.urandom(512 if offset == size - 512 else MiB))
    return path


def create(folder: str, names: list) -> None:
    os.makedirs(folder, exist_ok=True)
    instances = []
    for name in names:
        root = os.path.join(folder, name)
        sshd = servers.Sshd(os.path.join(root, "sshd"))
        vms = os.path.join(root, "vms")
        raw = small_raw(os.path.join(root, "disk.raw"))
        paths = {}
        for vm, subformat in (("app", "monolithicSparse"), ("db", "monolithicFlat")):
            os.makedirs(os.path.join(vms, vm))
            vmfactory.convert(raw, os.path.join(vms, vm, f"{vm}.vmdk"), subformat)
            paths[vm] = vmfactory.write_vmx(os.path.join(vms, vm, f"{vm}.vmx"), f"{name} {vm}", [("scsi0:0", f"{vm}.vmdk")])
        os.unlink(raw)
        tools = os.path.join(root, "bin")
        os.makedirs(tools)
        os.makedirs(os.path.join(root, "shelf"))  # the "upload" destination (file://)
        doubles.install(tools, "vmrun")
        with open(os.path.join(tools, "vmrun-state.json"), "w") as handle:
            json.dump({"running": [paths["app"]]}, handle)
        with open(os.path.join(folder, f"{name}.yml"), "w") as handle:
            json.dump({"testhost_vms": os.path.join(root, "vms"), "testhost_app": paths["app"], "testhost_db": paths["db"],
                       "testhost_vmrun": os.path.join(tools, "vmrun"), "testhost_out": os.path.join(root, "ova"),
                       "testhost_shelf": os.path.join(root, "shelf"), "testhost_python": sys.executable}, handle)
        with open(os.path.join(root, "sshd.pid"), "w") as handle:
            handle.write(str(sshd.proc.pid))
        instances.append({"instance": name, "address": "127.0.0.1", "user": "root", "port": sshd.port,
                          "identity_file": sshd.client_key})
    config = os.environ.get("MOLECULE_INSTANCE_CONFIG") or os.path.join(folder, "instance_config.yml")
    with open(config, "w") as handle:
        json.dump(instances, handle)  # JSON is YAML


def destroy(folder: str) -> None:
    for pid_file in glob.glob(os.path.join(folder, "*", "sshd.pid")):
        with open(pid_file) as handle:
            try:
                os.kill(int(handle.read()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
    shutil.rmtree(folder, ignore_errors=True)
    config = os.environ.get("MOLECULE_INSTANCE_CONFIG")
    if config and os.path.isdir(os.path.dirname(config)):
        with open(config, "w") as handle:
            handle.write("[]\n")


def main(argv: list) -> int:
    if len(argv) >= 3 and argv[1] == "create":
        create(argv[2], argv[3:])
    elif len(argv) == 3 and argv[1] == "destroy":
        destroy(argv[2])
    else:
        sys.stderr.write(__doc__ + "\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
