#!/usr/bin/env bash
# Rebuilds the shipped proficiency benchmarks (assets/benchmarks/<scenario>.json) from five
# scripted expert sessions of each scenario (seeds 1-5), through the whole simulator:
# `haptwin demo --skill expert --seed N`, then `haptwin benchmark build`.
# Run it after a change to the tissue model, the instruments or the scripted performances.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${HAPTWIN_BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${HAPTWIN_BIN:-${CARGO_TARGET_DIR:-target}/release/haptwin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for scenario in palpation resection biopsy warmup; do
  logs=()
  for seed in 1 2 3 4 5; do
    out="$work/$scenario-$seed"
    "$bin" demo --no-render --no-realtime --scenario "$scenario" --skill expert --seed "$seed" \
      --out "$out" --json > "$out.json"
    logs+=("$out/session.htlog")
  done
  "$bin" benchmark build "$scenario" "${logs[@]}" -o "assets/benchmarks/$scenario.json"
done
