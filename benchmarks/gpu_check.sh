#!/usr/bin/env bash
# Every GPU check of issue 32 in one script, for a short GPU window:
#
#   OUT=... DATA=... bash benchmarks/gpu_check.sh [--time-to-accuracy] [--budget S] [--only STEP,...]
#
# OUT: report folder (default gpu_report); DATA: the CIFAR-10 JPEG copy (default
# datasets/cache/cifar10-jpeg.tar.gz). Steps, in order of value (the issue's "Must show" first):
#   tests           the GPU tests (op tests on both backends, model parity CPU vs GPU)
#   bench_resnet20, bench_vit   training step at batch 512 against PyTorch fp32 (the two ratios)
#   tta_resnet20, tta_vit       time to accuracy (with --time-to-accuracy; group "tta")
#   parity          tests/test_pretrained_parity.py (timm, torchvision)
#   bench_speedrun, bench_inference   cifar_speedrun's step at batch 1024; resnet20 inference
#   tta_speedrun    the speedrun_cpu recipe at batch 1024 (with --time-to-accuracy)
#   CHAPTER...      each chapter's default mode with TINYVISION_DEVICE=cuda (group "chapters";
#                   cheapest first), its .py run as a script (the GPU image has no Jupyter)
# Each step runs under its own `timeout`: its cap, or what is left of the budget (default 560 s,
# since one device call may run 600 s); a step that fails does not stop the next, and one with
# less than its minimum left is skipped. report.md gets each step's last lines, a summary (the
# ratios, the time-to-accuracy lines) and the command that runs the skipped steps. $OUT holds
# few files (the device tool brings back 8): report.md, the runs' metrics CSVs and logs.tar.gz
# (every step's whole output). GPU_CHECK_DRY=1 prints the steps and their limits, runs nothing.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }   # OUT and DATA: from the caller's folder
out=$(abs "${OUT:-$root/gpu_report}")
data=$(abs "${DATA:-$root/datasets/cache/cifar10-jpeg.tar.gz}")
cd "$root"
die() { echo "gpu_check.sh: $*" >&2; exit 2; }
args="$*" tta=0 only="" budget=${GPU_CHECK_BUDGET:-560}
while [ $# -gt 0 ]; do
  case $1 in
    --time-to-accuracy) tta=1 ;;
    --budget) [ $# -ge 2 ] || die "--budget: expected whole seconds"; budget=$2; shift ;;
    --only) [ $# -ge 2 ] || die "--only: expected STEP[,STEP...]"; only=$2; shift ;;
    *) die "unknown argument '$1' (expected --time-to-accuracy, --budget SECONDS, --only STEP[,STEP...])" ;;
  esac
  shift
done
case $budget in '' | *[!0-9]*) die "--budget: expected whole seconds, got '$budget'" ;; esac
export PYTHONUNBUFFERED=1 CUPY_TF32=${CUPY_TF32:-0} PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
dry=${GPU_CHECK_DRY:-}

# the chapters' .py files, cheapest first: the appendices take seconds, 01 (pretraining) longest
chapters=$(printf '%s\n' chapters/[!_]*.py | LC_ALL=C sort -r | sed 's|^chapters/||; s|\.py$||')

plan() {   # every step in order of value: step NAME GROUP CAP_S MIN_S COMMAND...
  step tests - 150 40 python3 -m pytest -q -m gpu tests
  step bench_resnet20 - 90 30 python3 benchmarks/train_step.py --device cuda --model resnet20 --batch-size 512 \
    --steps 10 --vs-torch --json "$work/bench_resnet20.json"
  step bench_vit - 90 30 python3 benchmarks/train_step.py --device cuda --model vit_cifar_small --batch-size 512 \
    --steps 10 --vs-torch --json "$work/bench_vit.json"
  step tta_resnet20 tta 270 200 python3 -m tinyvision train --model resnet20 --data "$data" --device cuda --tf32 \
    --epochs 30 --batch-size 512 --lr 0.4 --label-smoothing 0.1 --tta-flip --out "$work/tta_resnet20" --no-progress
  step tta_vit tta 240 150 python3 -m tinyvision train --model vit_cifar_small --data "$data" --device cuda --tf32 \
    --epochs 20 --batch-size 512 --lr 1e-3 --tta-flip --out "$work/tta_vit" --no-progress   # lr: the 2026-11-26 run's, unscaled
  step parity - 120 30 python3 -m pytest -q tests/test_pretrained_parity.py
  step bench_speedrun - 90 30 python3 benchmarks/train_step.py --device cuda --model cifar_speedrun --batch-size 1024 \
    --steps 10 --vs-torch --json "$work/bench_speedrun.json"
  step bench_inference - 60 20 python3 benchmarks/train_step.py --device cuda --model resnet20 --batch-size 1024 \
    --inference --vs-torch --no-breakdown --json "$work/bench_inference.json"
  # --batch-size scales the recipe's lr: 0.75 x 1024 / 512 = 1.5 = speedrun_sgd(1024)["lr"]
  step tta_speedrun tta 240 120 python3 -m tinyvision train --recipe speedrun_cpu --data "$data" --device cuda --tf32 \
    --batch-size 1024 --out "$work/tta_speedrun" --no-progress
  for ch in $chapters; do
    step "$ch" chapters 150 15 env TINYVISION_DEVICE=cuda TINYVISION_DATA="$data" TINYVISION_QUICK=0 \
      TINYVISION_FULL=0 MPLBACKEND=Agg python3 "$work/run_chapter.py" "chapters/$ch.py"
  done
}

selected() {   # is step $1 (group $2) to run?
  if [ -n "$only" ]; then [[ ",$only," == *",$1,"* || ",$only," == *",$2,"* ]]
  else [ "$2" != tta ] || [ "$tta" = 1 ]; fi
}

step() {   # run one step under its timeout, its output in $work/NAME.log, its tail in the report
  local name=$1 group=$2 cap=$3 min=$4; shift 4
  if [ "$phase" = list ]; then
    known+=" $name"; [[ $group = - || " $known " == *" $group "* ]] || known+=" $group"; return 0
  fi
  selected "$name" "$group" || return 0
  local left=$((budget - SECONDS)) limit=$cap
  [ "$left" -lt "$limit" ] && limit=$left
  if [ -n "$dry" ]; then echo "[$name: ${limit}s] $*"; return 0; fi
  if [ "$limit" -lt "$min" ]; then
    skipped+=("$name"); log "skipped $name: ${left}s of the budget left, it needs ${min}s"; return 0
  fi
  log "$name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout -k 10 "$limit" "$@" >"$work/$name.log" 2>&1
  status[$name]=$?
  { echo '```'; tail -n 15 "$work/$name.log"; echo '```'; } | tee -a "$report"
  log "$name: exit ${status[$name]}$([ "${status[$name]}" = 124 ] && echo ' (timed out)') after $((SECONDS - start))s"
}

log() { echo "== $*" | tee -a "$report"; }

bench_line() {   # the summary line of benchmark log $1 (label $2, goal $3)
  local f=$work/$1.log tv pt ratio
  [ -f "$f" ] || return 0
  tv=$(sed -n 's/^tinyvision: *\([0-9.]*\) images.*/\1/p' "$f")
  pt=$(sed -n 's/^PyTorch [^:]*: *\([0-9.]*\) images.*/\1/p' "$f")
  ratio=$(sed -n 's/.*ratio tinyvision\/PyTorch = \([0-9.]*\).*/\1/p' "$f")
  if [ -n "$ratio" ]; then echo "- $2: tinyvision $tv, PyTorch $pt images/s, ratio $ratio$3"
  else echo "- $2: no result (exit ${status[$1]:-?}; see $1.log)"; fi
}

tta_line() {   # the time-to-accuracy line of run $1 (label $2): the trainer's last line, else its metrics
  local f=$work/$1.log csv=$work/$1/metrics.csv
  [ -f "$f" ] || return 0
  if grep -q '^done:' "$f"; then echo "- $2: $(grep '^done:' "$f" | tail -n 1)"
  elif [ -f "$csv" ]; then   # stopped early: epoch, wall_time, test_acc are columns 1, 10, 5
    echo "- $2: stopped (exit ${status[$1]:-?}) $(awk -F, 'NR > 1 { e = $1; w = $10; if ($5 != "") a = $5 }
      END { printf "after epoch %s, %.1f min; last tested accuracy %s", e, w / 60, a }' "$csv")"
  else echo "- $2: no result (exit ${status[$1]:-?}; see $1.log)"; fi
}

finish() {   # the summary, the metrics CSVs and the logs into $out
  {
    echo; echo "## Summary"
    [ -f "$work/tests.log" ] && echo "- GPU tests: $(grep -E '[0-9]+ (passed|failed|error)' "$work/tests.log" | tail -n 1)"
    [ -f "$work/parity.log" ] && echo "- pretrained parity: $(grep -E '[0-9]+ (passed|failed|error|skipped)' "$work/parity.log" | tail -n 1)"
    bench_line bench_resnet20 "ResNet-20 training step, batch 512" " (goal >= 0.6)"
    bench_line bench_vit "vit_cifar_small training step, batch 512" " (goal >= 0.5)"
    bench_line bench_speedrun "cifar_speedrun training step, batch 1024" ""
    bench_line bench_inference "ResNet-20 inference, batch 1024" ""
    tta_line tta_resnet20 "time to accuracy, resnet20 (goal 92% in <= 8 min)"
    tta_line tta_vit "time to accuracy, vit_cifar_small (goal 80% in <= 8 min)"
    tta_line tta_speedrun "time to accuracy, speedrun_cpu at batch 1024"
    for ch in $chapters; do
      [ -n "${status[$ch]+set}" ] && echo "- chapter $ch: exit ${status[$ch]}$(grep -E '^[A-Za-z_.]+(Error|Exception)\b' "$work/$ch.log" | tail -n 1 | sed 's/^/: /')"
    done
    if [ ${#skipped[@]} -gt 0 ]; then
      echo "- not run (budget): ${skipped[*]}"
      echo "  run them: bash benchmarks/gpu_check.sh --only $(IFS=,; echo "${skipped[*]}") --budget SECONDS"
    fi
    echo "- wall time ${SECONDS}s of a ${budget}s budget"
  } | tee -a "$report"
  for run in tta_resnet20 tta_vit tta_speedrun; do
    [ -f "$work/$run/metrics.csv" ] && cp "$work/$run/metrics.csv" "$out/${run}_metrics.csv"
  done
  tar -czf "$out/logs.tar.gz" -C "$work" --exclude='*.tvz' --exclude='*.npz' . 2>/dev/null
}

known="" phase=list work='$work'   # listing and dry run: the work folder shown as $work
plan
for name in ${only//,/ }; do
  [[ " $known " == *" $name "* ]] || die "--only: no step '$name'; the steps and groups:$known"
done
phase=run skipped=() report=/dev/null
declare -A status=()
if [ -n "$dry" ]; then plan; exit 0; fi

mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")   # run folders and checkpoints stay out of $out
report=$out/report.md
echo "# gpu_check $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" > "$report"
log "arguments: ${args:-none}; budget ${budget}s; data $data; CUPY_TF32=$CUPY_TF32"
[ -e "$data" ] || log "WARNING: no data at $data: the time-to-accuracy runs will fail, the chapters use their synthetic stand-in"
cat > "$work/run_chapter.py" <<'EOF'
"""Run a chapter's .py (jupytext percent format) as a script in its folder; without IPython,
display() prints."""
import os, runpy, sys, types
try:
    import IPython.display  # noqa: F401
except ImportError:
    shim = types.ModuleType("IPython.display")
    shim.Markdown, shim.display = str, print
    sys.modules.update({"IPython": types.ModuleType("IPython"), "IPython.display": shim})
path = os.path.abspath(sys.argv[1])
os.chdir(os.path.dirname(path))
sys.path.insert(0, os.path.dirname(path))
runpy.run_path(path, run_name="__main__")
EOF
trap finish EXIT
trap 'exit 143' TERM INT
device=$(timeout 60 python3 -c "import cupy; p = cupy.cuda.runtime.getDeviceProperties(0); \
print('cupy', cupy.__version__, p['name'].decode() if isinstance(p['name'], bytes) else p['name'])" 2>&1) \
  || { log "no usable CuPy/GPU: $device"; exit 1; }
log "device: $device"
plan
log "done"
