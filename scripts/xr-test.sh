#!/usr/bin/env bash
# The OpenXR end-to-end tests (tests/it/xr.rs, the #[ignore]d ones) against a real runtime:
# Monado 25 in a Debian trixie chroot (scripts/monado-chroot.sh, docs/xr-ci.md).
#   1. builds the chroot, or reuses the cached one (/var/cache/haptwin/monado-trixie);
#   2. builds haptwin and the integration tests (release, as scripts/test.sh does);
#   3. runs `it xr:: --ignored` inside the chroot with monado-service running (null compositor,
#      simulated HMD and controllers, lavapipe), one test at a time.
# Its "test result:" line counts in scripts/test.sh's totals. Needs root (debootstrap, chroot,
# mounts). Exit status: the tests'.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "xr-test: $*"; }
fail() { echo "xr-test: FAILED: $*" >&2; exit 1; }

bash scripts/monado-chroot.sh ensure || fail "the Monado chroot cannot be built"

say "building haptwin and the integration tests (release)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --release --bin haptwin || fail "haptwin does not build"
cargo test --release --test it --no-run --message-format=json-render-diagnostics \
    >"$work/cargo-it.json" || fail "the integration tests do not build"
it_exe="$(sed -n 's/.*"name":"it".*"executable":"\([^"]*\)".*/\1/p' "$work/cargo-it.json" | tail -n1)"
[ -n "$it_exe" ] && [ -x "$it_exe" ] || fail "no test executable for 'it' in cargo's output"

say "running the OpenXR tests under Monado"
bash scripts/monado-chroot.sh run -- "$it_exe" xr:: --ignored --test-threads=1
