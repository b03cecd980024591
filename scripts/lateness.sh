#!/usr/bin/env bash
# Measures the haptic loop's lateness next to the bare timer floor, back to back on this
# machine: `haptwin doctor --json` (bare ticker, no work) then `haptwin demo --json` (the full
# loop with tissue, recorder and renderer). Prints both and keeps the JSON under DIR.
# Usage: scripts/lateness.sh [DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-out/lateness}"
secs="${2:-5}"
mkdir -p "$dir"
if ! command -v python3 >/dev/null; then
    echo "lateness.sh: needs python3 to print the table (apt-get install python3)" >&2
    exit 1
fi
cargo build --release --quiet
./target/release/haptwin doctor --json --timer-seconds "$secs" > "$dir/doctor.json"
./target/release/haptwin demo --json --seconds "$secs" --out "$dir/demo" > "$dir/demo.json"
python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
doc = json.load(open(f"{d}/doctor.json"))
demo = json.load(open(f"{d}/demo.json"))
t = doc["timer"]["lateness_us"]
l = demo["lateness_us"]
print(f"{'lateness (us)':<28}{'p50':>8}{'p99':>9}{'p99.9':>9}{'max':>9}")
print(f"{'bare timer (doctor)':<28}{t['p50']:>8}{t['p99']:>9}{t['p999']:>9}{t['max']:>9}")
print(f"{'haptic loop (demo)':<28}{l['p50']:>8}{l['p99']:>9}{l['p999']:>9}{l['max']:>9}")
w = demo["tick_work_us"]
print(f"tick work p50 {w['p50']} us, p99 {w['p99']} us, max {w['max']} us; "
      f"ticks {demo['ticks']} in {demo['seconds']:.3f} s ({demo['rate_hz']:.1f} Hz); "
      f"overruns: timer {doc['timer']['overruns']}, loop {demo['overruns']}; "
      f"realtime: {demo['realtime']['status']}; frames {demo['frames_rendered']}")
PY
