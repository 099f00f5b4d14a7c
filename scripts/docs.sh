#!/usr/bin/env bash
# The docsite: every module, action plugin and role page rendered by antsibull-docs from the collection's own
# documentation, with the guides of docs/docsite/rst (docs/docsite/extra-docs.yml), built by Sphinx into
# .build/docs/html. A warning fails the build (sphinx-build -W). Offline: links to Ansible's own documentation go
# through docs/sphinx/ansible_links.rst instead of intersphinx.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_venv "$ROOT/scripts/requirements-docs.txt"
use_collection

mkdir -p "$BUILD"
exec 9>"$BUILD/docs.lock"
flock 9  # one build at a time: each replaces .build/docs
SRC=$BUILD/docs/src
OUT=$BUILD/docs/html
rm -rf "$SRC" "$OUT"
mkdir -p "$SRC/rst"
chmod 700 "$SRC" "$SRC/rst"  # antsibull-docs wants its folders readable by itself only
antsibull-docs collection --use-current --cleanup everything --dest-dir "$SRC/rst" ovatool.vmware >/dev/null
cp "$ROOT/docs/sphinx/conf.py" "$SRC/conf.py"
cp "$ROOT/docs/sphinx/index.rst" "$ROOT/docs/sphinx/ansible_links.rst" "$SRC/rst/"
# the performance guide's chart: the last measured run of the benchmark (tests/benchmarks/chart.py)
cp "$ROOT/docs/benchmark.svg" "$SRC/rst/collections/ovatool/vmware/docsite/"
sphinx-build -q -b html -c "$SRC" -W --keep-going "$SRC/rst" "$OUT"
echo "The docsite is in $OUT (open $OUT/index.html)"
