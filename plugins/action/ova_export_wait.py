# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of ovatool.vmware.ova_export_wait: poll the host's async export jobs, print their progress,
ride out a dropped SSH connection, return every job's result."""

from __future__ import annotations

import os
import time

from ansible import constants as C
from ansible.errors import AnsibleConnectionFailure
from ansible.utils.display import Display

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.errors import OvatoolError
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.s3control import Renewer, S3Settings
from ansible_collections.ovatool.vmware.plugins.plugin_utils.action import HostModuleAction

display = Display()


def human_bytes(count) -> str:
    value = float(count or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1000
    return f"{value:.1f} TB"


def describe_progress(progress) -> str:
    """'42.0 % of 8.6 GB, 512.3 MB/s, about 9 s left' from a ProgressFile's content."""
    if not progress or progress.get("percent") is None or not progress.get("total_bytes"):
        return "starting"
    text = f"{progress['percent']:.1f} % of {human_bytes(progress['total_bytes'])}, {progress.get('mbps', 0):.1f} MB/s"
    if progress.get("eta_seconds") is not None:
        text += f", about {progress['eta_seconds']} s left"
    if progress.get("note"):
        text += f"; {progress['note']}"
    return text


def warning_text(warning) -> str:
    """A module warning as text: a string, or (ansible-core 2.19) a WarningSummary or its dict form."""
    if isinstance(warning, str):
        return warning
    if isinstance(warning, dict):
        event = warning.get("event") if isinstance(warning.get("event"), dict) else warning
        return str(event.get("msg", warning))
    return str(getattr(getattr(warning, "event", None), "msg", None) or warning)


def normalize(jobs, progress_dir):
    """[(jid or None, name, progress_file, element)] from registered async results or explicit dicts."""
    out = []
    for number, element in enumerate(jobs):
        jid = element.get("jid") or element.get("ansible_job_id")
        name = element.get("name") or element.get("item") or jid or f"job {number + 1}"
        name = name if isinstance(name, str) else str(name)
        progress = element.get("progress_file")
        if not progress and progress_dir:
            # named after the loop's item when there is one, as the export role names it (an export into s3://
            # also returns the VM's name, which is not the file's)
            named = element.get("item") if isinstance(element.get("item"), str) else name
            progress = os.path.join(progress_dir, f".{os.path.basename(named)}.progress.json")
        out.append((str(jid) if jid else None, name, progress, element))
    return out


class Reconnecting:
    """Call something on the host; while the connection is lost, say so once, reset it and try again every
    ``poll`` seconds for ``timeout`` seconds, then give up naming the jobs that go on on the host."""

    def __init__(self, action, host, poll, timeout, pending) -> None:
        self.action = action
        self.host = host
        self.poll = poll
        self.timeout = timeout
        self.pending = pending

    def __call__(self, call):
        lost_since = None
        while True:
            try:
                value = call()
            except AnsibleConnectionFailure as exc:
                reason = exc.message.strip() or "no answer"
                now = time.monotonic()
                if lost_since is None:
                    lost_since = now
                    # display(), not warning(): ansible-core 2.19 holds a task's warnings until it ends
                    display.display(f"[WARNING]: {self.host}: lost the connection ({reason}); the exports go on on "
                                    f"the host; reconnecting for up to {self.timeout} s", color=C.COLOR_WARN, stderr=True)
                if now - lost_since >= self.timeout:
                    raise AnsibleConnectionFailure(
                        f"lost the connection for {now - lost_since:.0f} s while exports were running; they go on "
                        f"on the host (async job ids {', '.join(sorted(self.pending))}): run again to pick up their "
                        f"OVAs ({reason})") from None
                try:
                    self.action._connection.reset()  # pylint: disable=protected-access
                except Exception:  # pylint: disable=broad-except  # a connection that cannot reset reconnects anyway
                    pass
                time.sleep(self.poll)
                continue
            if lost_since is not None:
                display.display(f"{self.host}: connection back after {time.monotonic() - lost_since:.0f} s")
            return value


class ActionModule(HostModuleAction):
    MODULE = "ova_export_wait"

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        args = self.task_args()
        host = task_vars.get("inventory_hostname", "host")
        jobs = normalize(args["jobs"], args["progress_dir"])
        poll = max(1, args["poll"])
        results = [dict(element, item=name) if not jid else None for jid, name, progress, element in jobs]
        pending = {jid: (index, name, progress) for index, (jid, name, progress, element) in enumerate(jobs) if jid}
        deadline = time.monotonic() + max(0, args["timeout"])
        shown = {}
        reach = Reconnecting(self, host, poll, args["reconnect_timeout"], pending)
        async_dir = args["async_dir"] or (reach(lambda: self._remote_expand_user(
            self.get_shell_option("async_dir", default="~/.ansible_async"))) if pending else None)
        renewer = Renewer(S3Settings.from_params(args["s3"]))
        renewals = []  # fresh upload URLs for the next call to hand to the host
        while pending:
            began_round = time.monotonic()
            answer = reach(lambda: self._execute_module(
                module_name=f"ovatool.vmware.{self.MODULE}", task_vars=task_vars,
                module_args={"jobs": [{"jid": jid, "progress_file": progress}
                                      for jid, (index, name, progress) in pending.items()],
                             "async_dir": async_dir, "cleanup": args["cleanup"], "hold": poll, "renew": renewals}))
            renewals = []
            if answer.get("failed"):
                result.update(failed=True, msg=f"cannot read the export jobs on the host: {answer.get('msg')}")
                return result
            now = time.monotonic()
            before = len(pending)
            for status in answer.get("jobs", []):
                jid = status["jid"]
                if jid not in pending:
                    continue
                index, name = pending[jid][:2]
                if status["finished"]:
                    job = dict(status["result"] or {}, item=name, ansible_job_id=jid)
                    results[index] = job
                    del pending[jid]
                    self._show_end(host, name, job)
                else:
                    renewals.extend(self._renew(renewer, host, jid, name, pending[jid][2], status.get("progress")))
                    if jid not in shown or now - shown[jid] >= args["progress_interval"]:
                        shown[jid] = now
                        display.display(f"{host} | {name}: {describe_progress(status.get('progress'))}")
            if pending and now >= deadline:
                for jid, (index, name, progress) in pending.items():
                    message = f"still running after {args['timeout']} s (async job {jid}); it goes on on the host"
                    results[index] = {"failed": True, "item": name, "ansible_job_id": jid, "msg": message}
                break
            if pending and len(pending) == before:  # the host held the call for a finish; wait out the rest
                time.sleep(max(0.0, poll - (time.monotonic() - began_round)))

        ordered = [job for job in results if job is not None]
        result.update(changed=any(job.get("changed") for job in ordered), results=ordered,
                      failed_jobs=sum(1 for job in ordered if job.get("failed")))
        return result

    def cleanup(self, force=False):
        """Remove the module's temporary folder on the host, unless the host cannot be reached: then the
        connection error of that clean-up must not replace the message naming the jobs that go on there
        (ansible-core calls cleanup() in a ``finally`` around run())."""
        try:
            super().cleanup(force)
        except AnsibleConnectionFailure:
            display.vvv("could not remove the temporary folder on the host: it is unreachable")

    @staticmethod
    def _renew(renewer, host, jid, name, progress_file, progress):
        """[renewal] for each of the job's uploads (the OVA's, and its images' under ``uploads``) whose URLs are
        past half their life; a failure is said, and tried again next round (the host waits for fresh URLs up to
        its retry_seconds once the old ones expire)."""
        progress = progress or {}
        uploads = [progress.get("upload")] + list(progress.get("uploads") or [])
        renewals = []
        for upload in uploads:
            if not progress_file or not renewer.due(jid, upload, time.time()):
                continue
            try:
                urls = renewer.renew(jid, upload)
            except (OvatoolError, KeyError, TypeError, ValueError) as exc:
                display.warning(f"{host} | {name}: cannot renew the upload's URLs: {exc}")
                continue
            except Exception as exc:  # pylint: disable=broad-except  # boto3's errors: no credentials, no endpoint
                display.warning(f"{host} | {name}: cannot renew the upload's URLs: {type(exc).__name__}: {exc}")
                continue
            display.display(f"{host} | {name}: renewed the upload's URLs ({len(urls['parts'])} parts) for "
                            f"{urls['expires'] - time.time():.0f} s")
            renewals.append({"progress_file": progress_file, "urls": urls})
        return renewals

    @staticmethod
    def _show_end(host, name, job):
        for warning in job.get("warnings") or ():
            display.warning(f"{host} | {name}: {warning_text(warning)}")
        if job.get("failed"):
            display.display(f"{host} | {name}: failed: {job.get('msg', 'no message')}")
        elif job.get("changed"):
            seconds = job.get("elapsed_seconds")
            speed = f" in {seconds:.1f} s, {job.get('throughput_mbps', 0):.1f} MB/s" \
                if isinstance(seconds, (int, float)) else ""
            codec = f" ({job['codec']} level {job.get('compression_level')})" if job.get("codec") else ""
            display.display(f"{host} | {name}: exported to {job.get('dest')}{speed}{codec}")
        else:
            display.display(f"{host} | {name}: {job.get('msg', 'nothing to do')}")
