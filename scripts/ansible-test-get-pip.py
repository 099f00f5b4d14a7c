# Copyright (c) ovatool.vmware contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What ansible-test runs in place of pip's bootstrap script (get-pip.py), which it would otherwise download
from a host many networks cannot reach.

scripts/sanity.sh puts this file where ansible-test looks for its cached copy. It is called in a fresh
virtualenv with the arguments of get-pip.py (the pip version wanted, and flags): pip comes from the Python's own
``ensurepip`` (no download), then pip installs the requested version from the package index as any other
package would.
"""
import subprocess
import sys

IGNORED = ("--no-setuptools", "--no-wheel")


def main() -> int:
    wanted = [arg for arg in sys.argv[1:] if arg not in IGNORED]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    return subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + wanted)


if __name__ == "__main__":
    sys.exit(main())
