#!/usr/bin/env bash
# The fleet drill and the soak (not part of CI): many sshd hosts on loopback, faults, killed runs.
# Arguments go to tests/benchmarks/fleet_drill.py (--help lists them). Needs root.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_system_tools qemu-img:qemu-utils /usr/sbin/sshd:openssh-server ssh:openssh-client
ensure_venv "$ROOT/scripts/requirements-test.txt"
use_collection
export PYTHONPATH="$ANSIBLE_COLLECTIONS_PATH:$ROOT/tests${PYTHONPATH:+:$PYTHONPATH}"
exec python "$ROOT/tests/benchmarks/fleet_drill.py" "$@"
