#!/usr/bin/env bash
# ansible-test sanity on a copy of the checkout placed at ansible_collections/ovatool/vmware.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -n "${VIRTUAL_ENV:-}" ] || ensure_venv "$ROOT/scripts/requirements-test.txt"

SHARED=${OVATOOL_SHARED:-$ROOT/../shared}
TARGET=$BUILD/sanity/ansible_collections/ovatool/vmware
rm -rf "$TARGET"
mkdir -p "$TARGET"
cd "$ROOT"
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
  [ -e "$f" ] || continue
  mkdir -p "$TARGET/$(dirname "$f")"
  cp -p "$f" "$TARGET/$f"
done
# ansible-test wants to download pip's bootstrap script, which this network cannot reach.
want=$(grep -ohE "pip='[0-9.]+'" \
  "$(python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" \
  | head -n1 | tr -dc '0-9.')
if [ -n "$want" ] && [ -f "$SHARED/tools/ansible-test-get-pip.py" ]; then
  mkdir -p "$HOME/.ansible/test/cache"
  cp "$SHARED/tools/ansible-test-get-pip.py" "$HOME/.ansible/test/cache/get_pip_${want//./_}.py"
fi
cd "$TARGET"
git init -q .
git add -A >/dev/null 2>&1
ansible-test sanity --venv --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --color no "$@"
