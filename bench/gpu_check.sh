#!/usr/bin/env bash
# Every GPU path of convlens, once, with its parity against the CPU reference and its speed.
#
#   bash bench/gpu_check.sh            # from the repository root; about 2-4 minutes on a GPU
#
# 1. `convlens run` on CUDA against the CPU run: stages.npz max |difference| per stage.
# 2. `convlens train --amp` on digits (CUDA, mixed precision) against the CPU run: val accuracy.
# 3. `torchrun --nproc-per-node 1 -m convlens train` (the DDP / NCCL launch): val accuracy.
# 4. `convlens inspect` and `convlens saliency` on CUDA against the CPU: npz max |difference|.
# 5. The fused-vs-torch choice on a GPU: what `auto` picks for a 12 MP image on CUDA, its time,
#    and its numbers against the CPU (fused) run.
#
# Where no CUDA device is present it prints one line saying so and exits 0, checking nothing.
# Every step prints PASS or FAIL; the exit status is the number of failed steps.
# CONVLENS_GPU_CHECK_DEVICE=cpu runs every step on the CPU instead: a dry run of this script.
# CONVLENS_GPU_CHECK_KEEP=1 keeps the work folder (logs, result folders) and prints its path.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
export MPLBACKEND=Agg COLUMNS=100
DEV=${CONVLENS_GPU_CHECK_DEVICE:-cuda}

if [ "$DEV" = cuda ] && ! "$PY" - <<'EOF'
import sys
import torch
sys.exit(0 if torch.cuda.is_available() else 1)
EOF
then
  echo "no GPU: torch sees no CUDA device here, so nothing was checked (run bench/gpu_check.sh on a machine with one)"
  exit 0
fi

WORK=$(mktemp -d -t convlens-gpu-XXXXXX)
if [ -n "${CONVLENS_GPU_CHECK_KEEP:-}" ]; then echo "# work folder: $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
FAILED=0
"$PY" -c "import sys, torch; print('# convlens GPU check:', torch.cuda.get_device_name(0) if sys.argv[1] == 'cuda' else 'dry run on the CPU,', f'torch {torch.__version__}, CUDA {torch.version.cuda}')" "$DEV"

step() {  # step NAME COMMAND...: run it timed; a failure counts and is shown
  local name=$1; shift
  local started
  started=$(date +%s%N)
  if "$@" > "$WORK/$name.log" 2>&1; then
    printf '  %-34s %8d ms\n' "$name" $(( ($(date +%s%N) - started) / 1000000 ))
  else
    echo "FAIL $name (exit $?):"; tail -n 15 "$WORK/$name.log"; FAILED=$((FAILED + 1)); return 1
  fi
}

compare_npz() {  # compare_npz LABEL A.npz B.npz TOLERANCE: max |a - b| / max |a| per array
  "$PY" - "$@" <<'EOF'
import sys
import numpy as np
label, first, second, tolerance = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
with np.load(first) as a, np.load(second) as b:
    worst = 0.0
    for key in a.files:
        if a[key].dtype.kind != "f":
            continue
        scale = float(np.abs(a[key]).max()) or 1.0
        error = float(np.abs(a[key] - b[key]).max()) / scale
        worst = max(worst, error)
        print(f"    {key:<24} {str(a[key].shape):<22} rel. max |diff| {error:.2e}")
print(f"{'PASS' if worst <= tolerance else 'FAIL'} {label}: worst {worst:.2e} (tolerance {tolerance:g})")
sys.exit(0 if worst <= tolerance else 1)
EOF
  [ $? -eq 0 ] || FAILED=$((FAILED + 1))
}

accuracy() {  # accuracy RUN_FOLDER: its best val accuracy, or nan where the run wrote none
  "$PY" -c "
import json, sys
try:
    print(json.load(open(sys.argv[1] + '/metrics.json'))['val_accuracy'])
except (OSError, KeyError, ValueError):
    print('nan')" "$1"
}

echo "## 1. run on CUDA"
PHOTO="$WORK/photo12.jpg"
"$PY" -c "
from PIL import Image
from convlens.images import sample_path
Image.open(sample_path()).convert('RGB').resize((4000, 2668), Image.LANCZOS).save('$PHOTO', quality=90)"
step run-cpu "$PY" -m convlens run "$PHOTO" --device cpu --out "$WORK/run-cpu" \
  && step run-gpu "$PY" -m convlens run "$PHOTO" --device "$DEV" --out "$WORK/run-gpu" \
  && compare_npz "run $DEV vs cpu" "$WORK/run-cpu/stages.npz" "$WORK/run-gpu/stages.npz" 1e-4

echo "## 2. train --amp on digits"
TRAIN=(train --data digits --epochs 3 --seed 0)
step train-cpu "$PY" -m convlens "${TRAIN[@]}" --device cpu --out "$WORK/train-cpu"
step train-gpu-amp "$PY" -m convlens "${TRAIN[@]}" --device "$DEV" --amp \
       --out "$WORK/train-amp" \
  && "$PY" - "$(accuracy "$WORK/train-cpu")" "$(accuracy "$WORK/train-amp")" "$DEV" <<'EOF' || FAILED=$((FAILED + 1))
import sys
cpu, amp = map(float, sys.argv[1:3])
ok = abs(cpu - amp) <= 0.05  # False where either is nan (no metrics.json)
print(f"{'PASS' if ok else 'FAIL'} train --amp: val accuracy {amp:.3f} on {sys.argv[3]}, {cpu:.3f} on the CPU (within 0.05)")
sys.exit(0 if ok else 1)
EOF

echo "## 3. torchrun --nproc-per-node 1 (DDP, NCCL)"
if command -v "$(dirname "$PY")/torchrun" > /dev/null; then TORCHRUN="$(dirname "$PY")/torchrun"; else TORCHRUN=torchrun; fi
step torchrun-ddp "$TORCHRUN" --standalone --nproc-per-node 1 -m convlens "${TRAIN[@]}" \
    --device "$DEV" --out "$WORK/train-ddp" \
  && "$PY" - "$(accuracy "$WORK/train-cpu")" "$(accuracy "$WORK/train-ddp")" "$WORK/torchrun-ddp.log" <<'EOF' || FAILED=$((FAILED + 1))
import sys
cpu, ddp = map(float, sys.argv[1:3])
log = open(sys.argv[3], encoding="utf-8", errors="replace").read()
ddp_ran = "(DDP)" in log  # train says "device ... x N processes (DDP)" when it joined a group
ok = abs(cpu - ddp) <= 0.05 and ddp_ran  # False where either is nan (no metrics.json)
print(f"{'PASS' if ok else 'FAIL'} torchrun: val accuracy {ddp:.3f}, CPU {cpu:.3f} (within 0.05); "
      f"DDP {'used' if ddp_ran else 'NOT used'}")
if not ddp_ran:
    print("    train did not join a process group: with one process (WORLD_SIZE 1) it trains "
          "without DDP, so NCCL was not exercised")
sys.exit(0 if ok else 1)
EOF

echo "## 4. inspect and saliency on CUDA"
MODEL="$WORK/train-cpu"
[ -f "$MODEL/model.safetensors" ] || MODEL="$WORK/train-amp"
for command in inspect saliency; do
  step "$command-cpu" "$PY" -m convlens "$command" "$MODEL" --device cpu --out "$WORK/$command-cpu" \
    && step "$command-gpu" "$PY" -m convlens "$command" "$MODEL" --device "$DEV" \
         --out "$WORK/$command-gpu" \
    && for npz in "$WORK/$command-cpu"/*.npz; do
         compare_npz "$command $DEV vs cpu ($(basename "$npz"))" "$npz" \
           "$WORK/$command-gpu/$(basename "$npz")" 1e-3
       done
done

echo "## 5. fused vs torch on a GPU"
"$PY" - "$PHOTO" "$DEV" <<'EOF' || FAILED=$((FAILED + 1))
import sys
import time
import torch
from convlens.config import LayerConfig
from convlens.images import load_image
from convlens.kernels import parse_kernels
from convlens.layers import compute_stages
image = load_image(sys.argv[1])
gpu = sys.argv[2]
kernels = parse_kernels(["sobel-h", "laplacian", "sobel-v"])
config = LayerConfig(pool=2)
times = {}
results = {}
runs = [("cpu", "auto"), ("cpu", "torch"), ("cpu", "fused"), (gpu, "auto"), (gpu, "torch")]
for device, backend in dict.fromkeys(runs):
    compute_stages(image, kernels, config, device, backend)  # warm: numba cache, CUDA context
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    results[device, backend] = compute_stages(image, kernels, config, device, backend)
    if device == "cuda":
        torch.cuda.synchronize()
    times[device, backend] = time.perf_counter() - started
    print(f"    {device:<5} {backend:<6} {times[device, backend] * 1000:8.1f} ms")
reference = results["cpu", "torch"]
worst = max(float((getattr(r, s) - getattr(reference, s)).abs().max())
            / (float(getattr(reference, s).abs().max()) or 1.0)
            for r in results.values() for s in ("conv", "activated", "pooled"))
fastest = min(("auto", "torch"), key=lambda b: times[gpu, b])
ok = worst <= 1e-4 and times[gpu, "auto"] <= 1.5 * times[gpu, fastest]
print(f"{'PASS' if ok else 'FAIL'} backends: worst rel. difference {worst:.2e}; on {gpu} auto "
      f"took {times[gpu, 'auto'] * 1000:.1f} ms, the fastest ({fastest}) "
      f"{times[gpu, fastest] * 1000:.1f} ms")
sys.exit(0 if ok else 1)
EOF

echo "## $FAILED step(s) failed"
exit "$FAILED"
