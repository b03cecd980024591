#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine:
#   1. installs what the tests need (Mesa lavapipe, Vulkan loader and validation layers,
#      spirv-tools, qemu, a static busybox and cpio for the VM test, Xvfb and friends for the
#      window test, Chromium and chromedriver, PostgreSQL) with scripts/install-deps.sh when
#      something is missing;
#   2. fetches the real imaging volumes the twin tests use (scripts/fetch-test-data.sh);
#   3. starts the local PostgreSQL cluster and its test role and database
#      (scripts/pg-start.sh), so the store's tests run on PostgreSQL as well as on SQLite
#      (HAPTWIN_TEST_PG; HAPTWIN_REQUIRE_PG=1 makes them fail rather than skip without it);
#   4. runs every test (unit, integration, doc) in release mode, as the haptic loop is meant to
#      run;
#   5. runs the real-HID-path test in a small VM (scripts/vm-hid-test.sh);
#   6. runs the OpenXR end-to-end tests under Monado 25 in a Debian trixie chroot
#      (scripts/xr-test.sh; the chroot is built once and cached in /var/cache/haptwin), and
#      prints the totals of all on the last line. The run fails if any part fails.
# The dashboard's browser tests keep their screenshots in target/test-artifacts/dashboard/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/vulkan/icd.d/lvp_icd.json ] \
    || [ ! -f /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json ] \
    || ! command -v spirv-val >/dev/null \
    || ! command -v qemu-system-x86_64 >/dev/null || ! command -v cpio >/dev/null \
    || ! command -v Xvfb >/dev/null || ! command -v xdotool >/dev/null \
    || ! command -v xwd >/dev/null || ! command -v chromium >/dev/null \
    || ! command -v pg_ctlcluster >/dev/null \
    || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null \
    || ! command -v chromedriver >/dev/null \
    || [ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" != "install ok installed" ]; then
    bash scripts/install-deps.sh
fi

# Render on lavapipe whatever GPU the machine has, so images and validation results are the
# same everywhere (set VK_DRIVER_FILES yourself to test another driver).
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/share/vulkan/icd.d/lvp_icd.json ]; then
    export VK_DRIVER_FILES=/usr/share/vulkan/icd.d/lvp_icd.json
fi

# The real imaging volumes the twin tests read (nilearn's MNI T1, nibabel's and pydicom's test
# files), from PyPI into target/test-data/ (skipped when already there). A missing file fails
# the tests that need it.
bash scripts/fetch-test-data.sh
export HAPTWIN_REQUIRE_TEST_DATA=1
# The dashboard's browser tests (headless Chromium over chromedriver) fail, not skip, without
# the browser.
export HAPTWIN_REQUIRE_BROWSER=1

# The PostgreSQL the store's tests use besides SQLite (each test makes and drops a schema of its
# own in haptwin_test). A server that cannot be started fails the run here.
pg_url="$(bash scripts/pg-start.sh)"
export HAPTWIN_TEST_PG="$pg_url"
export HAPTWIN_REQUIRE_PG=1

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
cargo test --release "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
bash scripts/vm-hid-test.sh 2>&1 | tee -a "$log"
vm_status=${PIPESTATUS[0]}
bash scripts/xr-test.sh 2>&1 | tee -a "$log"
xr_status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 0 ]; then status=$vm_status; fi
if [ "$status" -eq 0 ]; then status=$xr_status; fi
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
