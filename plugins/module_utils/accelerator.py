# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The options of ova_accelerator, written once for its module (on the host) and its action plugin (on the
controller)."""

from __future__ import annotations

ARGUMENT_SPEC = dict(
    state_dir=dict(type="path", required=True),
    wheelhouse=dict(type="path"),
    cache_dir=dict(type="path"),
    download=dict(type="bool", default=True),
    required=dict(type="bool", default=False),
    wheels=dict(type="list", elements="dict"),
)
# as the action plugin validates them: state_dir names a folder on the host, which the controller must not expand
CONTROLLER_SPEC = dict(ARGUMENT_SPEC, state_dir=dict(type="str", required=True))
