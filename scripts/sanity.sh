#!/usr/bin/env bash
# ansible-test sanity on a copy of the checkout placed at ansible_collections/ovatool/vmware.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -n "${VIRTUAL_ENV:-}" ] || ensure_venv "$ROOT/scripts/requirements-test.txt"

TARGET=$BUILD/sanity/ansible_collections/ovatool/vmware
rm -rf "$TARGET"
mkdir -p "$TARGET"
cd "$ROOT"
git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
  [ -e "$f" ] || continue
  mkdir -p "$TARGET/$(dirname "$f")"
  cp -p "$f" "$TARGET/$f"
done
# ansible-test downloads pip's bootstrap script into a cache before it makes each virtualenv; many networks
# cannot reach its host. Our own stand-in (ensurepip, then pip from the package index) goes into that cache.
want=$(grep -ohE "pip='[0-9.]+'" \
  "$(python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py" \
  | head -n1 | tr -dc '0-9.')
if [ -z "$want" ]; then
  echo "cannot tell which pip this ansible-test bootstraps (python_requirements.py changed?)" >&2
  exit 1
fi
mkdir -p "$HOME/.ansible/test/cache"
cp "$ROOT/scripts/ansible-test-get-pip.py" "$HOME/.ansible/test/cache/get_pip_${want//./_}.py"
cd "$TARGET"
git init -q .
git add -A >/dev/null 2>&1
ansible-test sanity --venv --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
  --color no "$@"
