#!/usr/bin/env bash
# Runs every benchmark script in sequence; each one's output goes to the terminal and to
# docs/benchmark_logs/<name>.txt, headed by the exact command, the date, the machine and the load.
#
#   benchmarks/run_all.sh              # all of them (about 30 min on the 2-core CPU box)
#   benchmarks/run_all.sh inference    # only the named ones
#   QUICK=1 LOG_DIR=/tmp/bench benchmarks/run_all.sh   # tiny sizes: checks the scripts run
#
# record_reads.py needs strace (Linux). gpu.py is not in the list: it is the accelerator benchmark
# (docs/benchmarks.md, "GPU").
# Every script prints benchmarks/calibration.py's machine line first.
# PYTHON picks the interpreter (default: .venv/bin/python if present, else python3). Run it on a
# quiet machine: the scripts time wall-clock seconds.
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
LOG_DIR=${LOG_DIR:-docs/benchmark_logs}
mkdir -p "$LOG_DIR"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

# name -> arguments (the settings the docs quote)
declare -A ARGS=(
  [calibration]=""
  [clip_towers]="--frames 8,64 --chunks 0,4 --prompts 16 --repeats 2 --torch_threads 0,1"
  [train_step_cost]="--variant full --batch 2 --repeats 3"
  [input_pipeline]="--batches 30 --batch_size 32"
  [record_reads]="--num_videos 64 --shard_size 64"
  [inference]="--batch 8 --frames 8 --classes 51 --repeats 2 --torch_threads 0,1 --profile"
)
if [[ "${QUICK:-0}" == 1 ]]; then
  ARGS=(
    [calibration]=""
    [clip_towers]="--frames 2 --chunks 0,1 --prompts 1 --repeats 1 --torch_threads 0"
    [train_step_cost]="--variant full --batch 1 --repeats 1"
    [input_pipeline]="--batches 2 --batch_size 4 --num_videos 3 --work_dir ${TMPDIR:-/tmp}/mcj_bench_quick"
    [record_reads]="--num_videos 3 --shard_size 3 --work_dir ${TMPDIR:-/tmp}/mcj_bench_quick"
    [inference]="--batch 1 --frames 2 --classes 3 --repeats 1 --torch_threads 0"
  )
fi
ORDER=(calibration clip_towers train_step_cost input_pipeline record_reads inference)
if [[ $# -gt 0 ]]; then ORDER=("$@"); fi

cpu_model() {
  grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || uname -m
}

for name in "${ORDER[@]}"; do
  if [[ -z "${ARGS[$name]+set}" ]]; then
    echo "run_all.sh: unknown benchmark '$name' (known: ${!ARGS[*]})" >&2
    exit 2
  fi
  command="$PYTHON benchmarks/$name.py ${ARGS[$name]}"
  log="$LOG_DIR/$name.txt"
  {
    echo "\$ $command"
    echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "# machine: $(cpu_model), $(nproc) CPUs, $(uname -sr)"
    echo "# uptime before: $(uptime)"
  } | tee "$log"
  start=$(date +%s)
  # shellcheck disable=SC2086  # ARGS are word lists on purpose
  PYTHONUNBUFFERED=1 $PYTHON "benchmarks/$name.py" ${ARGS[$name]} 2>&1 | tee -a "$log"
  {
    echo "# uptime after: $(uptime)"
    echo "# wall: $(($(date +%s) - start)) s"
  } | tee -a "$log"
done
