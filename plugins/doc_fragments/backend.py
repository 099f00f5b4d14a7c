# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # How a module reaches VMware on the host: vmrun (Workstation, Fusion, Player) or vim-cmd (ESXi).
    DOCUMENTATION = r"""
options:
  backend:
    description: V(auto) uses vim-cmd where it exists (ESXi), else vmrun.
    type: str
    choices: [auto, vmrun, vim-cmd]
    default: auto
  vmrun_path:
    description:
      - Path of vmrun; by default found on PATH or in the usual places (Linux C(/usr/bin/vmrun), macOS
        C(/Applications/VMware Fusion.app/Contents/Library/vmrun)).
    type: path
  vmrun_type:
    description: vmrun's C(-T) host type.
    type: str
    choices: [ws, fusion, player]
  vim_cmd_path:
    description: Path of vim-cmd (default C(vim-cmd) on PATH, or C(/bin/vim-cmd)).
    type: path
"""
