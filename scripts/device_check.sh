#!/usr/bin/env bash
# make device-check: the GPU check (scripts/device_check.py) on a machine with a CUDA GPU, in
# under 8 minutes: the CUDA tests, bf16 training of the paper-scale teacher and DKP, checkpoint
# round trips, throughput; writes device_check.json and device_check.md under --out.
#   scripts/device_check.sh [--out DIR] [--skip-tests]
#   scripts/device_check.sh --cpu-dry-run      every step on the CPU, tiny (about 2 minutes)
# The Python: $DKP_PYTHON; else .venv's when its torch sees a GPU (or for a dry run); else
# ${DKP_BASE_PYTHON:-python3} (on the lent GPU machines, the image's, with a CUDA torch and
# Lightning) plus, in $DKP_DEVICE_SITE (default $TMPDIR/dkp-device-site, on PYTHONPATH), what dkp
# needs beyond such an image: from the wheels in .whl/ (made where PyPI is reachable, by
# scripts/device_wheels.sh) or else from PyPI. Torch is never installed here: it must already
# be a CUDA build (docs/cluster.md says why). dkp runs from this tree. Idempotent; quiet
# unless something fails, and then it says what.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "device_check.sh: $*" >&2; exit 1; }
runs() { "$1" -c "$2" >/dev/null 2>&1; }

dry=0
for arg in "$@"; do [[ $arg == --cpu-dry-run ]] && dry=1; done

# What dkp and its tests import; the first four are what a CUDA PyTorch image lacks.
IMPORTS=(av fvcore hydra omegaconf pytorch_lightning torchmetrics matplotlib tensorboard PIL
  numpy yaml pytest typing_extensions)
# Those four and what they need beyond such an image (scripts/device_wheels.sh's list).
EXTRA=(av hydra-core omegaconf antlr4-python3-runtime fvcore iopath yacs termcolor portalocker
  tabulate tqdm)
SITE=${DKP_DEVICE_SITE:-${TMPDIR:-/tmp}/dkp-device-site}

python_for_check() {
  if [[ -n ${DKP_PYTHON:-} ]]; then
    echo "$DKP_PYTHON"
  elif [[ -z ${DKP_BASE_PYTHON:-} && -x .venv/bin/python ]] && { ((dry)) ||
    runs .venv/bin/python 'import sys, torch; sys.exit(not torch.cuda.is_available())'; }; then
    echo .venv/bin/python
  else
    echo "${DKP_BASE_PYTHON:-python3}"
  fi
}

missing_imports() {
  local name
  for name in "${IMPORTS[@]}"; do runs "$1" "import $name" || echo "$name"; done
}

add_extras() {
  local py=$1 source=("${EXTRA[@]}")
  if [[ -d .whl ]] && compgen -G '.whl/*.whl' >/dev/null; then
    source=(--no-index .whl/*.whl)
  fi
  timeout 600 "$py" -m pip install -q --disable-pip-version-check --no-deps --upgrade \
    --target "$SITE" "${source[@]}" >&2 ||
    die "could not install ${EXTRA[*]}: carry them as wheels in .whl/ (scripts/device_wheels.sh)"
}

py=$(python_for_check)
runs "$py" 'import torch' || die "$py has no torch: it needs a CUDA build (docs/cluster.md)"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if [[ -n $(missing_imports "$py") ]]; then
  export PYTHONPATH=$PYTHONPATH:$SITE
  if [[ -n $(missing_imports "$py") ]]; then add_extras "$py"; fi
  missing=$(missing_imports "$py")
  [[ -z $missing ]] || die "$py lacks ${missing//$'\n'/ }; set DKP_PYTHON to a Python that has them"
fi
if ((!dry)); then
  runs "$py" 'import sys, torch; sys.exit(not torch.cuda.is_available())' ||
    die "$("$py" -c 'import torch; print("torch", torch.__version__)') sees no CUDA GPU; \
a CPU machine can run --cpu-dry-run"
fi
# --- Optional block (dkp-data, docs/data.md): can this GPU decode video itself (NVDEC through
# PyAV's CUDA hardware acceleration), and how fast next to one CPU core? Prints one JSON line and
# never fails the check; DKP_SKIP_NVDEC=1 leaves it out.
if ((!dry)) && [[ -z ${DKP_SKIP_NVDEC:-} ]]; then
  timeout 300 "$py" -m benchmarks.preparation --gpu-decoding ||
    echo "device_check.sh: the optional NVDEC check did not finish" >&2
fi
# --- End of the optional block.
exec timeout 900 "$py" scripts/device_check.py "$@"
