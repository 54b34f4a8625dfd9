#!/usr/bin/env bash
# The GPU check: the whole workbench on CUDA, both kernels, in one run on a machine that has Python 3.12 with a
# CUDA torch and no network (the device tool's machines). Prepare here first: `make gpu-check-prepare`
# (wheels into .whl/, your gr00t checkout into .device/gr00t); then, there, with .whl and .device carried:
#   bash bench/gpu/check.sh
# It builds the three envs as venvs over the machine's Python (its torch stack, the carried wheels first),
# runs `report` on CUDA with every variant (bf16-flash is refused, with the reason, unless flash-attn is
# installed), records the original's CUDA outputs into references/tiny-cuda, runs tests/backends/test_gpu.py, and
# packs everything into $OUT/gpu-check.tgz. Sized for well under 8 minutes on an H100.
# Knobs: GPU_CHECK_PYTHON (python3), GPU_CHECK_DEVICE (cuda; cpu rehearses it on a CPU box), OUT,
# GPU_CHECK_QUICK=1 (only the fp32/bf16 report and the recording: ~2 minutes), GPU_CHECK_REAL=1 (adds a run at
# the real N1.7-3B size, see real_size below).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO=$PWD
PY=${GPU_CHECK_PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
VARIANTS=${GPU_CHECK_VARIANTS:-fp32-sdpa,bf16-sdpa,bf16-sdpa-flash,bf16-flash}
OUT=${OUT:-$REPO/build/gpu-check}
WORK=$REPO/build/gpu-check-run
mkdir -p "$OUT" && rm -rf "$WORK" && mkdir -p "$WORK"
exec > >(tee "$OUT/gpu-check.log") 2>&1
step() { echo "[gpu-check +${SECONDS}s] $*"; }
fail() { echo "gpu-check: error: $*" >&2; pack; exit 2; }
pack() {  # everything worth keeping, in one file (the device tool returns at most 8)
  tar czf "$OUT/gpu-check.tgz" -C "$REPO" --ignore-failed-read build/gpu-check-run \
    $( [ -d references/tiny-cuda ] && echo references/tiny-cuda ) 2>/dev/null
  step "packed $(du -h "$OUT/gpu-check.tgz" | cut -f1) into $OUT/gpu-check.tgz"
}

step "machine: $(uname -m), $($PY -V 2>&1) at $(command -v "$PY")"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || step "no nvidia-smi"
$PY -m pip list --format=freeze > "$WORK/machine-packages.txt" 2>/dev/null
MACHINE_SITE=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || fail "$PY does not run"
for group in common tools original lerobot; do
  [ -f ".whl/$group.tar.xz" ] || fail "no .whl/$group.tar.xz: run \`make gpu-check-prepare\` here and carry .whl/*.tar.xz and .device"
done

# One env: a venv over the machine's interpreter; its own site-packages (the carried wheels, groot_lib) come
# first, then the machine's (torch, CUDA). The wheels are the local envs' versions (bench/gpu/prepare.py).
make_env() {
  local name=$1 dir=.envs/$1 site
  rm -rf "$dir"
  if ! "$PY" -m venv --without-pip "$dir"; then  # a distro Python without its venv package: the same by hand
    local base; base=$("$PY" -c 'import sys; print(sys._base_executable)')
    mkdir -p "$dir/bin" "$dir/lib/python3.12/site-packages" && ln -sf "$base" "$dir/bin/python"
    printf 'home = %s\ninclude-system-site-packages = false\nversion = 3.12\n' "$(dirname "$base")" > "$dir/pyvenv.cfg"
  fi
  site=$("$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "import site; site.addsitedir('$MACHINE_SITE')" > "$site/zzz_machine_site.pth"
  echo "$REPO" > "$site/groot_lib.pth"
  # the wheels, unpacked here in a venv's layout (lib/python3.12/site-packages, share): common, then the env's own
  for group in common "$name"; do
    "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="tar")' \
      ".whl/$group.tar.xz" "$dir" || fail "unpacking .whl/$group.tar.xz into $dir"
  done
}
for env in tools original lerobot; do make_env "$env"; done
[ -d .device/gr00t/gr00t ] && echo "$REPO/.device/gr00t" > "$(.envs/original/bin/python -c \
  'import sysconfig; print(sysconfig.get_paths()["purelib"])')/gr00t.pth"
step "envs built"

export JUPYTER_PATH=$REPO PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1 HF_HUB_OFFLINE=1
.envs/tools/bin/python -m groot_lib.workbench.kernels install --envs .envs || fail "kernels"
for env in original lerobot; do
  .envs/$env/bin/python - <<EOF || fail "the $env env does not import its stack"
import importlib.metadata as m, torch, transformers
print("$env:", "torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-", "transformers", transformers.__version__)
import ${env/original/gr00t.model}
EOF
done
step "kernels ok"

# Two passes: the variants every GPU runs first (and recorded), then the flash ones, so a flash failure
# cannot cost the rest; the store makes the second pass recompute only what is new.
report() {  # report NAME VARIANTS
  step "report $1 on $DEVICE, variants $2"
  ./gr00t-parity report --device "$DEVICE" --variants "$2" --out-root "$WORK/reports-$1" \
    --artifacts-root "$WORK/artifacts"
  echo "report $1 ($2) exit status: $?" | tee -a "$WORK/report-status.txt"
}
record() {  # record VARIANTS: the original's outputs on this device into references/tiny-cuda (or tiny on cpu)
  step "recording the original on $DEVICE, variants $1"
  .envs/tools/bin/python -m groot_lib.workbench.workflow record --device "$DEVICE" --variants "$1" \
    --artifacts-root "$WORK/artifacts" || step "recording $1 failed (see above)"
}
# GPU_CHECK_REAL=1: a random checkpoint with the real N1.7-3B architecture, generated here (~21 GB with its
# backbone cache, never packed), and one report on it (one tag, batch 1, fp32 + bf16): per-phase wall time and
# peak memory at real size on this GPU. Only timings, sizes and the pages come back.
real_size() {
  step "real-size checkpoint (random, N1.7-3B architecture)"
  timeout "${GPU_CHECK_REAL_GEN_S:-240}" .envs/original/bin/python -m groot_lib.tiny.generate --real-size \
    --out "$WORK/real" || { step "real-size generation failed or timed out"; return; }
  du -sb "$WORK/real"/* > "$WORK/real-sizes.txt"
  step "report at real size on $DEVICE"
  timeout "${GPU_CHECK_REAL_REPORT_S:-200}" ./gr00t-parity report --device "$DEVICE" --variants fp32-sdpa,bf16-sdpa \
    --checkpoint "$WORK/real/gr00t-n1.7-3b-random" --hf-home "$WORK/real/hf_home" --tags libero_sim \
    --batch-size 1 --out-root "$WORK/reports-real" --artifacts-root "$WORK/artifacts-real"
  echo "report real exit status: $?" | tee -a "$WORK/report-status.txt"
  du -ab "$WORK/reports-real" "$WORK/artifacts-real" 2>/dev/null | sort -n | tail -20 > "$WORK/real-report-sizes.txt"
  find "$WORK/reports-real" -name '*.npz' -delete
  rm -rf "$WORK/real" "$WORK/artifacts-real"
  tar czf "$OUT/gpu-real.tgz" -C "$WORK" reports-real real-sizes.txt real-report-sizes.txt report-status.txt
  step "packed the real-size run into $OUT/gpu-real.tgz"
}
report base fp32-sdpa,bf16-sdpa
record fp32-sdpa,bf16-sdpa
if [ "${GPU_CHECK_REAL:-0}" = 1 ]; then  # what is done so far comes back even if the real-size run runs out of time
  pack; real_size
fi
if [ "${GPU_CHECK_QUICK:-0}" = 1 ]; then
  rm -rf "$WORK/artifacts"; pack; step "done (quick)"; exit 0
fi
report flash "$VARIANTS"
record "$(echo "$VARIANTS" | sed 's/,bf16-flash//')"

step "tests/backends/test_gpu.py"
.envs/tools/bin/python -m pytest -q -p no:cacheprovider tests/backends/test_gpu.py 2>&1 | tail -15
rm -rf "$WORK/artifacts"  # its arrays are in the report folder (hard links) and the recordings
pack
step "done"
