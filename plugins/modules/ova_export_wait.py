#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ova_export_wait
short_description: Wait for exports started with async, printing percent and MB/s per VM
version_added: 0.1.0
description:
  - Watches C(ovatool.vmware.ova_export) tasks started with C(async) and C(poll=0) until every one has finished,
    and returns their results. While they run it prints, every O(progress_interval) seconds, each VM's percent
    done, MB/s and time left, read from the progress file the export writes (O(ovatool.vmware.ova_export#module:progress_file)).
  - One remote call a round reads every job of the host (the async job file and the progress file), so watching
    many exports costs no more than watching one.
  - When the SSH connection drops, the exports go on on the host (async jobs are detached from it); this task
    keeps trying to reconnect for O(reconnect_timeout) seconds and then carries on. Only when the host stays
    unreachable longer does the task report it unreachable, naming the job ids; the next run of the export role
    finds the finished OVAs current, or waits for an export still writing one (see O(ovatool.vmware.ova_export#module:refresh)).
  - A job that fails does not fail this task; its entry in RV(results) has C(failed) and C(msg). The task fails
    only when it cannot watch the jobs.
author: ovatool developers (@ovatool)
requirements:
  - Python 3.8 or newer on the host (the standard library only)
options:
  jobs:
    description:
      - The jobs to watch. Each element is the registered result of an async task (its C(ansible_job_id) and, in
        a loop, C(item)), or a dictionary with C(jid), C(name) and optionally C(progress_file).
      - An element without a job id (the async task failed to start it) is returned as it is.
    type: list
    elements: dict
    required: true
  progress_dir:
    description:
      - Where the progress files are when the elements do not name them; the file of job C(name) is
        C(<progress_dir>/.<basename of name>.progress.json), as the C(ovatool.vmware.export) role writes them.
    type: path
  timeout:
    description: Seconds to wait in all; jobs still running then are returned as failed (they keep running).
    type: int
    default: 86400
  poll:
    description: Seconds between two looks at the jobs.
    type: int
    default: 5
  progress_interval:
    description: Seconds between two progress lines for a VM; V(0) prints one every O(poll).
    type: int
    default: 30
  reconnect_timeout:
    description: Seconds to keep trying when the connection to the host is lost before reporting it unreachable.
    type: int
    default: 300
  async_dir:
    description:
      - The folder of Ansible's async job files on the host. By default the action plugin asks the shell plugin
        (its C(async_dir) option, C(~/.ansible_async) unless configured).
    type: path
  hold:
    description:
      - Used between the action plugin and the host; there is little reason to set it.
      - Seconds the host-side call waits for one of the jobs to finish before it answers (the action plugin
        passes O(poll)), so a finished export is seen at once rather than at the next poll.
    type: float
    default: 0
    version_added: 1.1.0
  cleanup:
    description: Remove a job's async result file and progress file once its result has been read.
    type: bool
    default: true
  s3:
    description:
      - For exports into C(s3://) whose presigned URLs would end before they do (temporary credentials, or
        O(ovatool.vmware.ova_export#module:presign_seconds)), the store and the credentials as the exports got
        them - C(endpoint_url), C(access_key), C(secret_key), C(session_token), C(region), C(validate_certs).
        Empty means boto3's usual chain on the controller.
      - When half of the URLs' lifetime has passed, the controller signs the parts not yet uploaded, and
        completing and aborting the upload, again and hands them to the host in a file beside the progress file
        that only the export's user can read. The credentials stay on the controller.
      - Only O(s3.secret_key) and O(s3.session_token) are kept out of the logs, so that no figure of the results
        (an upload's lifetime of 60 s, a size) is masked for equalling one of these values.
    type: dict
    version_added: 1.1.0
    suboptions:
      endpoint_url:
        description: The S3-compatible endpoint.
        type: str
      access_key:
        description: The access key ID.
        type: str
      secret_key:
        description: The secret access key.
        type: str
      session_token:
        description: The session token of temporary credentials.
        type: str
      region:
        description: The region.
        type: str
      validate_certs:
        description: Verify the endpoint's TLS certificate.
        type: bool
        default: true
      presign_seconds:
        description: How long renewed URLs live (less when the credentials end sooner).
        type: int
        default: 86400
      part_size_mb:
        description: Accepted as the exports got it; the parts' size is fixed when the upload starts.
        type: int
        default: 32
      upload_threads:
        description: Accepted as the exports got it; read by the host from the upload itself.
        type: int
        default: 4
  renew:
    description:
      - Used between the action plugin and the host; do not set it. Renewed URLs to write beside progress files.
    type: list
    elements: dict
    default: []
    version_added: 1.1.0
    suboptions:
      progress_file:
        description: The progress file of the export the URLs are for.
        type: path
      urls:
        description: The renewed URLs of one upload.
        type: dict
        suboptions:
          upload_id:
            description: The multipart upload's id.
            type: str
          expires:
            description: When the URLs end (seconds since the epoch).
            type: float
          parts:
            description: Part number to its UploadPart URL.
            type: dict
          complete_url:
            description: The CompleteMultipartUpload URL.
            type: str
          abort_url:
            description: The AbortMultipartUpload URL.
            type: str
          get_url:
            description: The GetObject URL.
            type: str
          delete_url:
            description: The DeleteObject URL.
            type: str
attributes:
  action:
    support: full
    description: An action plugin on the controller drives the module, which runs once a round on the host.
  async:
    support: none
    description: It is what watches async tasks.
  check_mode:
    support: full
    description: It only reads (and removes the files of finished jobs).
  diff_mode:
    support: none
    description: No diff.
notes:
  - "Progress lines go to the controller's output (also an AWX job's), as C(<host> | <VM>: 42.0 % of 8.6 GB,
    512.3 MB/s, about 9 s left)."
seealso:
  - module: ovatool.vmware.ova_export
  - module: ansible.builtin.async_status
"""

EXAMPLES = r"""
- name: Start two exports in the background
  ovatool.vmware.ova_export:
    src: "{{ item }}"
    dest: /exports/
    progress_file: "/exports/.{{ item | basename }}.progress.json"
  loop: [/vms/web01/web01.vmx, /vms/db01/db01.vmx]
  async: 86400
  poll: 0
  register: started

- name: Wait for them, printing their progress
  ovatool.vmware.ova_export_wait:
    jobs: "{{ started.results }}"
    progress_dir: /exports
    progress_interval: 10
  register: exports

- name: Name the failures
  ansible.builtin.debug:
    msg: "{{ item.item }}: {{ item.msg }}"
  loop: "{{ exports.results | selectattr('failed', 'defined') | selectattr('failed') }}"
"""

RETURN = r"""
results:
  description:
    - One entry per job, in the order of O(jobs) - the result of its C(ova_export) task (C(dest), C(changed),
      C(msg), C(failed) ...) with C(item) (the job's name) and C(ansible_job_id).
  returned: always
  type: list
  elements: dict
failed_jobs:
  description: How many of the O(jobs) failed (their entries in RV(results) have C(failed) and C(msg)).
  returned: always
  type: int
  sample: 0
jobs:
  description: The state of each job in this round (module side).
  returned: when called without the action plugin
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.host.progress import job_statuses
from ansible_collections.ovatool.vmware.plugins.module_utils._ovatool.storage.urlbook import renewal_path, write_renewal
from ansible_collections.ovatool.vmware.plugins.module_utils.specs import EXPORT_WAIT


def main():
    module = AnsibleModule(argument_spec=EXPORT_WAIT, supports_check_mode=True)
    params = module.params
    if not params["async_dir"]:
        module.fail_json(msg="ova_export_wait runs through its action plugin, which tells it the async job folder")
    for renewal in params["renew"]:
        try:
            write_renewal(renewal_path(renewal["progress_file"]), renewal["urls"])
        except (OSError, KeyError, TypeError) as exc:
            module.warn(f"could not hand renewed upload URLs to the export of {renewal.get('progress_file')}: {exc}")
    jobs = job_statuses(params["async_dir"], params["jobs"], params["cleanup"], params["hold"])
    module.exit_json(changed=False, jobs=jobs)


if __name__ == "__main__":
    main()
