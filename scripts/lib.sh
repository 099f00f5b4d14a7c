#!/usr/bin/env bash
# Shared set-up for scripts/demo.sh and scripts/test.sh: system tools and the virtualenv.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${OVATOOL_VENV:-$ROOT/.venv}
BUILD=$ROOT/.build

# ensure_system_tools CMD:PACKAGE ... : apt-get install the packages whose command (or file, given as a path) is
# missing, and the virtualenv support of Debian's python3, which comes in its own package.
ensure_system_tools() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -e "${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Please install: ${missing[*]} (no apt-get on this machine)" >&2
    exit 1
  fi
  echo "Installing system packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_venv REQUIREMENTS_FILE: a virtualenv at $VENV with those requirements, activated.
ensure_venv() {
  local req=$1 stamp
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  stamp="$VENV/.installed-$(basename "$req")-$(sha256sum "$req" | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "Installing Python packages from $(basename "$req") into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    touch "$stamp"
  fi
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
}

# collection_path: a collections tree where ovatool.vmware is this checkout.
collection_path() {
  local dir=$BUILD/collections/ansible_collections/ovatool
  mkdir -p "$dir"
  [ -L "$dir/vmware" ] || ln -sfn "$ROOT" "$dir/vmware"
  echo "$BUILD/collections"
}

# use_collection: Ansible (and Python, for the benchmark's imports) find ovatool.vmware as this checkout.
use_collection() {
  ANSIBLE_COLLECTIONS_PATH=$(collection_path)
  export ANSIBLE_COLLECTIONS_PATH
}
