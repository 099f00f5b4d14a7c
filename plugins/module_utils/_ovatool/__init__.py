# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ovatool engine: VMware VMX + VMDK in, OVA out.

Standard library only, Python 3.8+. The files import each other relatively so
that the same files work inside AnsiballZ and as the installed ``ovatool``
package.
"""
