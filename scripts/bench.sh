#!/usr/bin/env bash
# The export benchmark (not part of CI): ovatool against qemu-img and VMware's vmdk-convert, in one run.
# Arguments go to tests/benchmarks/export_bench.py (--help lists them).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_system_tools qemu-img:qemu-utils mkfs.ext4:e2fsprogs
ensure_venv "$ROOT/scripts/requirements-test.txt"
use_collection
export PYTHONPATH="$ANSIBLE_COLLECTIONS_PATH:$ROOT/tests${PYTHONPATH:+:$PYTHONPATH}"
exec python "$ROOT/tests/benchmarks/export_bench.py" "$@"
