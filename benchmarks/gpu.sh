#!/usr/bin/env bash
# The benchmark run on a GPU machine, what the `-gpu` sections of benchmarks/RESULTS.md record:
# long distillation runs within a budget, the distillation outer step, the models and the
# attribution methods against their PyTorch / Captum peers (which run on the same GPU in float32,
# TF32 off on both sides). Each script gets a time limit so that one slow part cannot starve the rest.
#
#   bash benchmarks/gpu.sh OUT [PARTS] [distill-long budget in s, default 200]
#
# PARTS: comma-separated from distill-long, distill, models, attribution (default: all four, about
# 12 minutes at most; the first call of each process pays about 40 s of GPU start-up).
# Writes OUT/RESULTS-gpu.md (the sections to merge into benchmarks/RESULTS.md), OUT/*.json, the
# distilled artifacts in OUT/distill-long-gpu/ and a log per script.
set -u
out=${1:?usage: bash benchmarks/gpu.sh OUT [PARTS] [budget]}
parts=${2:-distill-long,distill,models,attribution}
budget=${3:-200}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
md="$out/RESULTS-gpu.md"
here=$(cd "$(dirname "$0")" && pwd)
nvidia-smi -L
step() {  # step NAME LIMIT COMMAND...: run with a time limit if NAME is in PARTS, log to OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    case ",$parts," in *",$name,"*) ;; *) return ;; esac
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    echo "== $name: exit $? after ${SECONDS}s in all"
    grep -v "cuda_timer\|Delay kernel" "$out/$name.log" | tail -n 25
}
step distill-long $((budget + 90)) python3 "$here/distill_long.py" --budget "$budget" --out "$out/distill-long-gpu" --results-md "$md"
step distill 240 python3 "$here/distill.py" --parts outer,per_init --min-time 0.5 --results-md "$md" --out "$out/distill-gpu.json"
step models 130 python3 "$here/models.py" --rounds 2 --min-time 0.3 --results-md "$md" --out "$out/models-gpu.json"
step attribution 130 python3 "$here/attribution.py" --batch 16 --no-memory --min-time 0.3 --results-md "$md" --out "$out/attribution-gpu.json"
