#!/usr/bin/env bash
# The AWX / Automation Controller execution environment's build context: this collection built as a tarball,
# then `ansible-builder create` (ansible-builder 3.x). The context lands in .build/ee/context; building the
# image from it needs podman or docker: ansible-builder build -c .build/ee/context -t ovatool-ee:1.0.0
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -n "${VIRTUAL_ENV:-}" ] || ensure_venv "$ROOT/scripts/requirements-test.txt"

OUT=$BUILD/ee
rm -rf "$OUT"
mkdir -p "$OUT"
cd "$ROOT"
ansible-galaxy collection build --force --output-path "$OUT" . >/dev/null
# a fixed name, so that execution-environment.yml need not change with every version
mv "$OUT"/ovatool-vmware-*.tar.gz "$OUT/ovatool-vmware.tar.gz"
ansible-builder create -f execution-environment.yml -c "$OUT/context" "$@"
