#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine:
#   1. installs what the tests need (Mesa lavapipe, Vulkan loader and validation layers,
#      spirv-tools) with scripts/install-deps.sh when something is missing;
#   2. runs every test (unit, integration, doc) in release mode, as the haptic loop is meant to
#      run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/vulkan/icd.d/lvp_icd.json ] \
    || [ ! -f /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json ] \
    || ! command -v spirv-val >/dev/null; then
    bash scripts/install-deps.sh
fi

cargo test --release "$@"
