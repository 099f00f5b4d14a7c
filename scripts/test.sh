#!/usr/bin/env bash
# The whole test suite, as CI runs it: pytest (unit, functional, reliability), the Molecule scenarios of the
# roles (extensions/molecule/, real sshd test hosts), ansible-lint, antsibull-docs lint, ansible-test sanity.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_system_tools qemu-img:qemu-utils vmdkinfo:libvmdk-utils mkfs.ext4:e2fsprogs \
  /usr/sbin/sshd:openssh-server openssl:openssl cc:gcc make:make /usr/include/zlib.h:zlib1g-dev
ensure_venv "$ROOT/scripts/requirements-test.txt"
use_collection

cd "$ROOT"
# the ovatool command, installed from this checkout as users install it
python -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$ROOT" >/dev/null
python -m pytest -n "${OVATOOL_TEST_WORKERS:-2}" --dist loadgroup -p no:cacheprovider "$@" tests
NO_COLOR=1 molecule test --all
# ansible-lint on the whole repository; it gets a HOME of its own, so no collection copy it made earlier can
# stand in for this checkout
mkdir -p "$BUILD/lint-home"
HOME="$BUILD/lint-home" ansible-lint --offline --profile production
# the collection's documentation as Galaxy and docs.ansible.com render it (plugins, roles, links)
(cd "$ANSIBLE_COLLECTIONS_PATH/ansible_collections/ovatool/vmware" &&
  HOME="$BUILD/lint-home" antsibull-docs lint-collection-docs --plugin-docs .)
bash "$ROOT/scripts/sanity.sh"
