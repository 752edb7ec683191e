#!/usr/bin/env bash
# The wheels a GPU machine that reaches no package index needs for scripts/device_check.sh,
# into .whl/ (git-ignored through .git/info/exclude), to carry there with the tree: dkp's
# needs beyond a CUDA PyTorch image (av, hydra-core, omegaconf, fvcore and theirs), at the
# versions .venv tests with. Run here, where pip reaches PyPI. Idempotent, quiet.
#   scripts/device_wheels.sh          for CPython ${DKP_DEVICE_PY:-3.12} on x86-64 Linux
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${DKP_DEVICE_PY:-3.12}
DIR=.whl
# Binary wheels for the target Python; pure-Python sdists built into wheels here.
BINARY=(av hydra-core omegaconf yacs termcolor portalocker tabulate tqdm)
SOURCE=(fvcore iopath antlr4-python3-runtime)

pinned() { # NAME==VERSION as .venv has it, else NAME
  local version=""
  [[ -x .venv/bin/python ]] &&
    version=$(.venv/bin/python -m pip show "$1" 2>/dev/null | awk '/^Version:/ {print $2}')
  echo "$1${version:+==$version}"
}

mkdir -p "$DIR"
if [[ -d .git ]] && ! grep -qxF '/.whl/' .git/info/exclude 2>/dev/null; then
  echo '/.whl/' >>.git/info/exclude
fi
binary=() source=()
for name in "${BINARY[@]}"; do binary+=("$(pinned "$name")"); done
for name in "${SOURCE[@]}"; do source+=("$(pinned "$name")"); done
timeout 600 python3 -m pip download -q --disable-pip-version-check --no-deps \
  --only-binary=:all: --python-version "$PY" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$DIR" "${binary[@]}"
timeout 600 python3 -m pip wheel -q --disable-pip-version-check --no-deps -w "$DIR" "${source[@]}"
