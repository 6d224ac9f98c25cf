#!/usr/bin/env bash
# Runs every fuzz target under AFL++ (through cargo-afl) for SECONDS each, all at once, at low
# priority, then prints each target's executions, coverage and crashes.
#   cargo install cargo-afl            # once; builds AFL++'s runtime for this rustc
#   bash tests/fuzz/afl.sh [SECONDS] [TARGET...]
# Findings land in target/afl/out/TARGET/default/{crashes,hangs}; copy a crash into
# tests/fuzz/crashes/TARGET/ (it then replays on every `cargo test`) and fix it. After a long
# run, minimise each queue into tests/fuzz/queue/TARGET/ (README, "Fuzzing": `cargo afl cmin`
# with cargo-afl's own afl-showmap first on PATH; Debian's 4.04c one lacks `-I`).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(normalize classify_request classify_batch report_request sync_request model_request
           similarity_record decision_log rules_file model_package knowledge_table)
fi
cargo afl build --release -p smsguard-fuzz --features afl --target-dir target/afl
export AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
# One process serves many inputs; the protocol targets open the server state (models, sled)
# on their first input, which takes seconds: hence the generous first-run timeout.
export AFL_FUZZER_LOOPCOUNT=100000
mkdir -p target/afl/out
for t in "${targets[@]}"; do
  rm -rf "target/afl/out/$t" "target/afl/seeds/$t"
  # Seeds: the hand-made corpus plus the minimised queue of earlier runs (tests/fuzz/queue).
  mkdir -p "target/afl/seeds/$t"
  cp tests/fuzz/corpus/"$t"/* "target/afl/seeds/$t/"
  if [ -d "tests/fuzz/queue/$t" ]; then cp tests/fuzz/queue/"$t"/* "target/afl/seeds/$t/"; fi
  nice -n 15 cargo afl fuzz -i "target/afl/seeds/$t" -o "target/afl/out/$t" -t 20000+ \
    -V "$seconds" -- target/afl/release/fuzz-afl "$t" > "target/afl/out/$t.log" 2>&1 &
done
wait
for t in "${targets[@]}"; do
  stats="target/afl/out/$t/default/fuzzer_stats"
  printf '%-18s ' "$t"
  awk -F' *: *' '/^(run_time|execs_done|execs_per_sec|corpus_count|bitmap_cvg|edges_found|total_edges|saved_crashes|saved_hangs)/ {printf "%s=%s ", $1, $2}' "$stats"
  echo
done
