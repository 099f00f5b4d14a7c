# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the tests share: VMs and disks to export (vmfactory, esxfactory), oracles (ovacheck), servers on loopback
(servers, testhost), running Ansible (ansiblerun) and checking that bad input leaves nothing (sources).

``tests/`` is on the import path through pytest's ``pythonpath`` setting (pyproject.toml), and through
``PYTHONPATH`` for the processes the tests start; nothing edits ``sys.path``."""
