# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Only secrets are no_log. Ansible masks every value of a no_log option wherever it appears in a result (a
number too, when the value is part of it), so an option holding figures must not be no_log as a whole: with
``presign_seconds: 60`` an upload's ``lifetime`` of 60 came back as VALUE_SPECIFIED_IN_NO_LOG_PARAMETER and the
export failed. Checked with Ansible's own validator and masking, on presign values that are also other figures."""
from __future__ import annotations

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values

from ansible_collections.ovatool.vmware.plugins.module_utils import export_spec, specs

SECRET, TOKEN = "s3cr3t-key-value", "session-token-value"
URL = "http://127.0.0.1:8333/releases/a.ova?partNumber=1&X-Amz-Signature=abc"


def no_log_values(spec: dict, params: dict) -> set:
    result = ArgumentSpecValidator(spec).validate(params)
    assert not result.error_messages, result.error_messages
    return set(result._no_log_values)  # pylint: disable=protected-access


@pytest.mark.parametrize("seconds", [60, 3600])
def test_export_wait_masks_the_secrets_and_urls_only(seconds):
    params = {"jobs": [], "s3": {"endpoint_url": "http://127.0.0.1:8333", "access_key": "admin", "secret_key": SECRET,
                                 "session_token": TOKEN, "region": "us-east-1", "presign_seconds": seconds},
              "renew": [{"progress_file": "/tmp/.a.progress.json",
                         "urls": {"upload_id": "u1", "expires": 1765152060.5, "parts": {"1": URL},
                                  "complete_url": URL + "c", "abort_url": URL + "a"}}]}
    masked = no_log_values(specs.EXPORT_WAIT, params)
    assert masked == {SECRET, TOKEN, URL, URL + "c", URL + "a"}
    progress = {"upload": {"lifetime": seconds, "expires": 1765152060.5, "upload_id": "u1", "parts": 3600},
                "endpoint": "http://127.0.0.1:8333", "region": "us-east-1"}
    assert remove_values(progress, masked) == progress, "no figure or name of a result is masked"


@pytest.mark.parametrize("seconds", [60, 3600])
def test_export_masks_the_upload_s_urls_only(seconds):
    upload = {"urls": [URL], "complete_url": URL + "c", "abort_url": URL + "a", "part_size": 5 << 20,
              "fingerprint": "f" * 64, "lifetime": seconds, "expires": 1765152060.5, "timeout": 60,
              "bucket": "releases", "key": "a.ova", "upload_id": "u1"}
    masked = no_log_values(export_spec.EXPORT, {"src": "/vm/a.vmx", "dest": "s3://releases/", "upload": upload,
                                                "secret_key": SECRET, "access_key": "admin",
                                                "presign_seconds": seconds})
    assert masked == {SECRET, URL, URL + "c", URL + "a"}
    answer = {"lifetime": seconds, "timeout": 60, "size": 3600, "dest": "s3://releases/a.ova"}
    assert remove_values(answer, masked) == answer


def test_a_whole_no_log_dict_would_mask_the_figures():
    """Why the options are split: the failure the old ``s3`` option caused, with the same validator."""
    masked = no_log_values({"s3": {"type": "dict", "no_log": True}}, {"s3": {"presign_seconds": 60}})
    assert remove_values({"lifetime": 60}, masked) == {"lifetime": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}
