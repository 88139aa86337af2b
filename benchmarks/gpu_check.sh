#!/usr/bin/env bash
# One script for a short GPU window (steps 1-2 took 2 minutes on an H200 on 2026-11-26):
#   1. the GPU tests (op tests on both backends, model parity CPU vs GPU),
#   2. training-step and inference benchmarks against PyTorch,
#   3. with --time-to-accuracy, the time-to-accuracy runs (ResNet 3 minutes, ViT 3 minutes on
#      an H200).
# Writes everything under ${OUT:-gpu_report}/ and a summary report.md.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_report}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 CUPY_TF32=${CUPY_TF32:-0}
log() { echo "== $*" | tee -a "$out/report.md"; }

python3 -c "import cupy; print('cupy', cupy.__version__, cupy.cuda.runtime.getDeviceProperties(0)['name'])" \
  | tee "$out/device.txt" || { echo "no usable CuPy/GPU"; exit 1; }
log "device: $(cat "$out/device.txt")"

log "GPU tests"
timeout 240 python3 -m pytest -q -m gpu tests 2>&1 | tail -n 30 | tee "$out/gpu_tests.txt" | tee -a "$out/report.md"

log "benchmarks (training step, batch 512)"
for m in resnet20 vit_cifar_small; do
  timeout 90 python3 benchmarks/train_step.py --device cuda --model "$m" --batch-size 512 --steps 10 --vs-torch \
    2>&1 | tee "$out/bench_$m.txt" | head -n 6 | tee -a "$out/report.md"
done
log "benchmarks (inference, batch 1024)"
timeout 60 python3 benchmarks/train_step.py --device cuda --model resnet20 --batch-size 1024 --inference --vs-torch \
  --no-breakdown 2>&1 | tee "$out/bench_infer.txt" | head -n 6 | tee -a "$out/report.md"

if [ "${1:-}" = "--time-to-accuracy" ]; then
  data=${DATA:-datasets/cache/cifar10-jpeg.tar.gz}
  log "time to accuracy: resnet20, 30 epochs"
  timeout 480 python3 -m tinyvision train --model resnet20 --data "$data" --device cuda --tf32 --epochs 30 \
    --batch-size 512 --lr 0.4 --label-smoothing 0.1 --tta-flip --out "$out/tta_resnet20" --no-progress \
    2>&1 | tail -n 5 | tee -a "$out/report.md"
  log "time to accuracy: vit_cifar_small, 20 epochs"
  timeout 480 python3 -m tinyvision train --model vit_cifar_small --data "$data" --device cuda --tf32 --epochs 20 \
    --batch-size 512 --tta-flip --out "$out/tta_vit" --no-progress 2>&1 | tail -n 5 | tee -a "$out/report.md"
fi
log "done"
