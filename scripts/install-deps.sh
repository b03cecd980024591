#!/usr/bin/env bash
# Installs the system packages haptwin's tests need on Debian 12 (bookworm):
#   - Mesa lavapipe (software Vulkan) from bookworm-backports: bookworm's own Mesa 22.3
#     lavapipe draws every multiview view into layer 0, Mesa 25 does not;
#   - the Khronos Vulkan loader and validation layers;
#   - spirv-tools (spirv-val checks the SPIR-V that build.rs produces from shaders/);
#   - for the real-HID-path VM test (scripts/vm-hid-test.sh): qemu-system-x86 (software
#     emulation only, without its recommends; from bookworm-backports, whose qemu-utils some
#     images already carry and which breaks bookworm's own qemu-system-common), a static busybox
#     and cpio for the VM's initramfs, and gcc with the static libc for the fake devices;
#   - for the desktop window test (tests/it/window.rs): Xvfb (a real X server without a
#     screen), xauth (for xvfb-run), xdotool (types into the window), xwd from x11-apps (reads
#     its pixels), and the X11 client libraries winit loads at run time (Xlib, Xlib-xcb,
#     Xcursor, Xi, Xrandr, xkbcommon-x11);
#   - a real browser, Chromium (headless), for the session report test (tests/it/score_report.rs)
#     and the dashboard's tests, and chromium-driver (chromedriver, the same version as
#     Chromium), through which the dashboard's browser tests (tests/it/dashboard_browser.rs)
#     drive it over WebDriver;
#   - PostgreSQL 15 (Debian's `postgresql`, without its recommends: sysstat, logrotate,
#     e2fsprogs) for the store's tests on PostgreSQL (tests/it/store.rs; scripts/pg-start.sh
#     starts the cluster 15/main that the package creates, and makes the test role and database).
# Building haptwin itself needs none of these: ash and openxr load their loaders at run time.
# Idempotent; needs root (or sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        # Derive the backports source from the system's first stanza, naming no mirror.
        sed 's/^Suites:.*/Suites: bookworm-backports/' /etc/apt/sources.list.d/debian.sources \
            | awk 'BEGIN{RS="";ORS="\n\n"} NR==1' \
            | $SUDO tee /etc/apt/sources.list.d/backports.sources >/dev/null
    elif grep -qs '^deb ' /etc/apt/sources.list; then
        # One-line style (a classic installer's /etc/apt/sources.list): reuse its first mirror.
        mirror="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)"
        echo "deb $mirror bookworm-backports main" \
            | $SUDO tee /etc/apt/sources.list.d/backports.list >/dev/null
    else
        echo "install-deps: found no Debian source (debian.sources or sources.list) to derive bookworm-backports from" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
$SUDO apt-get install -y -qq libvulkan1 vulkan-validationlayers vulkan-tools spirv-tools >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends busybox-static cpio gcc libc6-dev binutils \
    xz-utils >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends xvfb xauth xdotool x11-apps libx11-6 \
    libx11-xcb1 libxcursor1 libxi6 libxrandr2 libxkbcommon-x11-0 >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null

echo "install-deps: lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers), validation layers $(dpkg-query -W -f='${Version}' vulkan-validationlayers), qemu $(dpkg-query -W -f='${Version}' qemu-system-x86), Xvfb $(dpkg-query -W -f='${Version}' xvfb), Chromium $(dpkg-query -W -f='${Version}' chromium), chromedriver $(dpkg-query -W -f='${Version}' chromium-driver), PostgreSQL $(dpkg-query -W -f='${Version}' postgresql)"
