# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The options that sign a package's manifest (module_utils/common.signing_spec): ova_export, ova_edit.
    DOCUMENTATION = r"""
options:
  private_key:
    description:
      - PEM RSA private key that signs the package's manifest; a C(.cert) member carries the signature and
        O(certificate). Needs O(certificate).
    type: path
  private_key_passphrase:
    description: Passphrase of O(private_key).
    type: str
  certificate:
    description: PEM certificate of the signer, carried in the C(.cert) member.
    type: path
"""
