# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""VMX ``guestOS`` values -> vSphere guest ids (``vmw:osType``) and CIM OS type numbers.

CIM numbers are CIM_OperatingSystem.OSType values (DSP0243 uses them as the
OperatingSystemSection ``ovf:id``): 1 Other, 36 Linux, 42 FreeBSD,
67 Windows XP, 69/70 Windows Server 2003, 76/77 Windows Server 2008,
78 FreeBSD 64-bit, 79/80 RHEL, 83 SUSE 64-bit, 84/85 SLES, 93/94 Ubuntu,
95/96 Debian, 97..100 Linux 2.4/2.6, 101 Linux 64-bit, 102 Other 64-bit,
103 Windows Server 2008 R2, 105 Windows 7, 106/107 CentOS, 108/109 Oracle
Linux, 112 Windows Server 2012, 113/114 Windows 8. Newer Windows releases
have no CIM number; OVF Tool writes 1 for them, and so do we.
"""
from __future__ import annotations

import re
from typing import Dict, Tuple

# exact VMX id (lower case) -> (vSphere guest id, CIM OS type)
_TABLE: Dict[str, Tuple[str, int]] = {
    "other": ("otherGuest", 1),
    "other-64": ("otherGuest64", 102),
    "otherlinux": ("otherLinuxGuest", 36),
    "otherlinux-64": ("otherLinux64Guest", 101),
    "other24xlinux": ("other24xLinuxGuest", 97),
    "other24xlinux-64": ("other24xLinux64Guest", 98),
    "other26xlinux": ("other26xLinuxGuest", 99),
    "other26xlinux-64": ("other26xLinux64Guest", 100),
    "ubuntu": ("ubuntuGuest", 93),
    "ubuntu-64": ("ubuntu64Guest", 94),
    "centos": ("centosGuest", 106),
    "centos-64": ("centos64Guest", 107),
    "oraclelinux": ("oracleLinuxGuest", 108),
    "oraclelinux-64": ("oracleLinux64Guest", 109),
    "sles": ("slesGuest", 84),
    "sles-64": ("sles64Guest", 85),
    "opensuse": ("opensuseGuest", 82),
    "opensuse-64": ("opensuse64Guest", 83),
    "fedora": ("fedoraGuest", 36),
    "fedora-64": ("fedora64Guest", 101),
    "almalinux-64": ("almalinux_64Guest", 80),
    "rockylinux-64": ("rockylinux_64Guest", 80),
    "vmware-photon-64": ("vmwarePhoton64Guest", 36),
    "vmwarephoton-64": ("vmwarePhoton64Guest", 36),
    "freebsd": ("freebsdGuest", 42),
    "freebsd-64": ("freebsd64Guest", 78),
    "winxppro": ("winXPProGuest", 67),
    "winxppro-64": ("winXPPro64Guest", 71),
    "winnetstandard": ("winNetStandardGuest", 69),
    "winnetenterprise": ("winNetEnterpriseGuest", 69),
    "winnetenterprise-64": ("winNetEnterprise64Guest", 70),
    "winnetstandard-64": ("winNetStandard64Guest", 70),
    "longhorn": ("winLonghornGuest", 76),
    "longhorn-64": ("winLonghorn64Guest", 77),
    "winvista": ("winVistaGuest", 73),
    "winvista-64": ("winVista64Guest", 74),
    "windows7": ("windows7Guest", 105),
    "windows7-64": ("windows7_64Guest", 105),
    "windows7srv-64": ("windows7Server64Guest", 103),
    "windows8": ("windows8Guest", 113),
    "windows8-64": ("windows8_64Guest", 114),
    "windows8srv-64": ("windows8Server64Guest", 112),
    "windows9": ("windows9Guest", 1),
    "windows9-64": ("windows9_64Guest", 1),
    "windows9srv-64": ("windows9Server64Guest", 1),
    "windows2019srv-64": ("windows2019srv_64Guest", 1),
    "windows2019srvnext-64": ("windows2019srvNext_64Guest", 1),
    "windows2022srvnext-64": ("windows2022srvNext_64Guest", 1),
    "windows11-64": ("windows11_64Guest", 1),
    "windows12-64": ("windows12_64Guest", 1),
}

# families whose ids carry a version number: (regex, vSphere stem, CIM 32-bit, CIM 64-bit)
_FAMILIES = (
    (r"rhel(\d+)", "rhel", 79, 80),
    (r"centos(\d+)", "centos", 106, 107),
    (r"oraclelinux(\d+)", "oracleLinux", 108, 109),
    (r"debian(\d+)", "debian", 95, 96),
    (r"sles(\d+)", "sles", 84, 85),
    (r"freebsd(\d+)", "freebsd", 42, 78),
    (r"darwin(\d+)", "darwin", 1, 1),
    (r"other(\d+)xlinux", "other{}xLinux", 36, 101),
    (r"solaris(\d+)", "solaris", 29, 81),
)


def map_guest_os(vmx_id: str) -> Tuple[str, int]:
    """(vSphere guest id, CIM OS type) for a VMX ``guestOS`` value."""
    key = (vmx_id or "other").strip().lower()
    if key in _TABLE:
        return _TABLE[key]
    bits64 = key.endswith("-64")
    stem = key[:-3] if bits64 else key
    for pattern, vim, cim32, cim64 in _FAMILIES:
        match = re.fullmatch(pattern, stem)
        if match:
            number = match.group(1)
            if "{}" in vim:
                return vim.format(number) + ("64Guest" if bits64 else "Guest"), cim64 if bits64 else cim32
            return f"{vim}{number}" + ("_64Guest" if bits64 else "Guest"), cim64 if bits64 else cim32
    if re.fullmatch(r"[a-z0-9_]+", stem):
        return stem + ("_64Guest" if bits64 and stem[-1:].isdigit() else "64Guest" if bits64 else "Guest"), (
            102 if bits64 else 1)
    return ("otherGuest64", 102) if bits64 else ("otherGuest", 1)
