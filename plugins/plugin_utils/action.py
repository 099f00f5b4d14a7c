# -*- coding: utf-8 -*-
# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the collection's action plugins share: they run on the controller and call this collection's modules on
the host, once or several times per task."""

from __future__ import annotations

from ansible.plugins.action import ActionBase


class HostModuleAction(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True
    _supports_check_mode = True
    _supports_async = False

    def host_module(self, name, args, task_vars, wrap_async=False):
        """Run ``ovatool.vmware.<name>`` on the host; its temporary files go when it is done (an async job's
        wrapper removes its own)."""
        answer = self._execute_module(module_name=f"ovatool.vmware.{name}", module_args=args, task_vars=task_vars,
                                      wrap_async=wrap_async)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return answer
