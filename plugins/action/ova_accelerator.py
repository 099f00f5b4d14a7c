# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of ovatool.vmware.ova_accelerator: the controller brings ISA-L and zlib-ng to the host.

The module first reports the host Python's facts and the wheels already unpacked there; the controller picks the
wheels that fit (the wheelhouse folder, then its own cache, filled by ``pip download`` when it can reach an index:
plugin_utils/wheels), copies only the missing ones to the host, and runs the module again to unpack them into
content-addressed folders and check that they load. The host needs no pip, no venv, no network, no compiler.
Unless ``required``, every way this can go wrong ends in one warning and no accelerator, never a failed task.
"""

from __future__ import annotations

import os

from ansible_collections.ovatool.vmware.plugins.plugin_utils import wheels
from ansible_collections.ovatool.vmware.plugins.plugin_utils.action import HostModuleAction

ESXI = ("ESXi loads only binaries installed from signed VIBs (execInstalledOnly), so exports there run on the "
        "standard library")


class ActionModule(HostModuleAction):
    MODULE = "ova_accelerator"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self.task_args())
        # these two are folders of the controller (state_dir is the host's)
        args["wheelhouse"] = os.path.expanduser(args["wheelhouse"] or os.environ.get("OVATOOL_WHEELHOUSE") or "") or None
        args["cache_dir"] = os.path.expanduser(args["cache_dir"] or "") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ovatool", "wheels")
        result.update(self._bring(args, task_vars or {}))
        return result

    def _bring(self, args, task_vars):
        host_args = {"state_dir": args["state_dir"], "required": args["required"]}
        probe = self.host_module("ova_accelerator", host_args, task_vars)
        if probe.get("failed"):
            return self._without(args, f"the host's Python could not be asked ({probe.get('msg')})")
        facts, present = probe["interpreter"], set(probe["installed"])
        folders = [folder for folder in (args["wheelhouse"], args["cache_dir"]) if folder]
        chosen, reasons = wheels.pick(folders, facts)
        if reasons and args["download"]:
            missing = [project for project, codec in wheels.PROJECTS if codec not in {w["codec"] for w in chosen}]
            failed = wheels.download(args["cache_dir"], facts, missing)
            chosen, reasons = wheels.pick(folders, facts)
            if failed and reasons:
                reasons.append(failed)
        base = {"interpreter": facts, "wheels": [wheel["wheel"] for wheel in chosen]}
        if not chosen:
            return dict(base, **self._without(args, "; ".join(reasons), facts))
        to_copy = [wheel for wheel in chosen if wheel["sha256"] not in present]
        if self._task.check_mode:
            return dict(base, changed=bool(to_copy), codecs=[], paths=[], copied=[w["wheel"] for w in to_copy])
        specs = []
        if to_copy:
            tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
            for wheel in to_copy:
                remote = self._connection._shell.join_path(tmpdir, wheel["wheel"])
                self._transfer_file(wheel["path"], remote)
                wheel["file"] = remote
            self._fixup_perms2([tmpdir] + [wheel["file"] for wheel in to_copy])
        for wheel in chosen:
            specs.append({key: wheel[key] for key in ("codec", "sha256", "file") if key in wheel})
        answer = self.host_module("ova_accelerator", dict(host_args, wheels=specs), task_vars)
        if answer.get("failed"):
            if args["required"]:
                return dict(base, failed=True, msg=str(answer.get("msg")), codecs=[], paths=[])
            return dict(base, **self._without(args, str(answer.get("msg")), facts))
        problems = reasons + [f"{codec}: {why}" for codec, why in sorted((answer.get("problems") or {}).items())]
        outcome = dict(base, changed=answer.get("changed", False), codecs=answer["codecs"], paths=answer["paths"],
                       copied=[wheel["wheel"] for wheel in to_copy])
        if problems:
            outcome["warnings"] = [self._sentence("; ".join(problems), facts, partial=bool(answer["codecs"]))]
        return outcome

    def _without(self, args, why, facts=None):
        """No accelerator: a failed task when it was required, else one warning."""
        sentence = self._sentence(why, facts or {}, partial=False)
        if args["required"]:
            return {"failed": True, "msg": sentence, "codecs": [], "paths": []}
        return {"changed": False, "codecs": [], "paths": [], "warnings": [sentence]}

    @staticmethod
    def _sentence(why, facts, partial):
        esxi = f" ({ESXI})" if facts.get("system") == "VMkernel" else ""
        if partial:
            return f"part of the accelerator could not be used on this host: {why}{esxi}"
        return f"no accelerator for this host, the exports use the standard library's zlib: {why}{esxi}"
