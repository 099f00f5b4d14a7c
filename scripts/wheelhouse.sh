#!/usr/bin/env bash
# wheelhouse.sh DIR: fill DIR with the accelerator's wheels (isal, zlib-ng) for the host Pythons an execution
# environment or an air-gapped controller serves: CPython 3.8-3.13 on x86_64 and aarch64, glibc (manylinux) and
# musl (musllinux). Point the role at DIR (ovatool_wheelhouse) or set OVATOOL_WHEELHOUSE=DIR on the controller.
# The execution environment runs this at image build time (execution-environment.yml). Narrow it with
# OVATOOL_WHEELHOUSE_PYTHONS="3.11 3.12" and OVATOOL_WHEELHOUSE_MACHINES="x86_64".
set -euo pipefail
dest=${1:?usage: wheelhouse.sh DIR}
pythons=${OVATOOL_WHEELHOUSE_PYTHONS:-3.8 3.9 3.10 3.11 3.12 3.13}
machines=${OVATOOL_WHEELHOUSE_MACHINES:-x86_64 aarch64}
read -r -a pip <<< "${OVATOOL_PIP:-python3 -m pip}"
mkdir -p "$dest"
missing=0
for version in $pythons; do
  for machine in $machines; do
    for platform in "manylinux2014_$machine" "musllinux_1_2_$machine"; do
      for project in isal zlib-ng; do
        if ! "${pip[@]}" download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$dest" \
            --python-version "$version" --implementation cp --platform "$platform" "$project" >/dev/null 2>&1; then
          echo "no $project wheel for CPython $version on $platform" >&2
          missing=$((missing + 1))
        fi
      done
    done
  done
done
count=$(find "$dest" -name '*.whl' | wc -l)
echo "$count wheels in $dest ($missing combinations have none)"
[ "$count" -gt 0 ]
