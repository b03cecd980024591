#!/usr/bin/env bash
# The real HID path, in a small VM (docs/haptics.md, "The real HID path in a VM").
#
# The host kernel has hidraw but no uhid, so no virtual HID device can be made here. This boots
# Debian's own kernel in qemu (TCG: software emulation, no KVM) with an initramfs holding a static
# busybox, the kernel's hid, hid-generic and uhid modules, two fake devices made through
# /dev/uhid (tests/vm/fake_hid.c: a WoodenHaptics 1.5 and a Polhem), and haptwin and its
# integration tests built static. /init (tests/vm/init) checks that `haptwin devices --json`
# lists both, runs the `hid_vm` tests (tests/it/hid_vm.rs) against them, prints "VM-HID:" result
# lines and powers off; this script reads the console.
#
# Usage: bash scripts/vm-hid-test.sh   (from anywhere; needs scripts/install-deps.sh's packages,
# and runs it when they are missing). The kernel package is cached in target/vm-cache/, so a
# rerun downloads nothing. The last line is a cargo-style "test result:" line (the devices and
# demo checks count as one test each), which scripts/test.sh adds to its totals. Exit status 0 only on a pass.
#
# Environment: VM_HID_TIMEOUT (seconds for the whole VM run, default 300).
set -euo pipefail
cd "$(dirname "$0")/.."

cache=target/vm-cache
work=target/vm-hid
triple=x86_64-unknown-linux-gnu
timeout_s=${VM_HID_TIMEOUT:-300}

say() { echo "vm-hid-test: $*"; }
# Fails the run with a cargo-style result line (counted by scripts/test.sh).
fail() {
    say "FAILED: $*"
    echo "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out (vm-hid-test: $*)"
    exit 1
}

# --- 1. tools -----------------------------------------------------------------------------------
have_tools() {
    command -v qemu-system-x86_64 >/dev/null && command -v cpio >/dev/null \
        && command -v gcc >/dev/null && command -v xz >/dev/null \
        && [ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" = "install ok installed" ]
}
if ! have_tools; then
    say "qemu, busybox-static, cpio or gcc missing: running scripts/install-deps.sh"
    bash scripts/install-deps.sh
    have_tools || fail "the VM test's packages are still missing after scripts/install-deps.sh"
fi
mkdir -p "$cache" "$work"

# --- 2. Debian's kernel and the three HID modules -----------------------------------------------
# The package name moves with security updates (linux-image-6.1.0-NN-amd64): ask apt which one
# linux-image-amd64 depends on now, and keep the .deb in the cache.
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null \
        | awk '/Depends: linux-image-[0-9]/ { print $2; exit }' || true
}
kpkg="$(kernel_package)"
if [ -z "$kpkg" ] && ! ls "$cache"/linux-image-*-amd64_*_amd64.deb >/dev/null 2>&1; then
    # No package lists yet (a fresh image): fetch them once.
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq || true
    kpkg="$(kernel_package)"
fi
deb=""
if [ -n "$kpkg" ]; then
    deb="$(ls -t "$cache/${kpkg}"_*_amd64.deb 2>/dev/null | head -n1 || true)"
    if [ -z "$deb" ]; then
        say "downloading $kpkg"
        sandbox=()
        if [ "$(id -u)" -eq 0 ]; then sandbox=(-o APT::Sandbox::User=root); fi
        (cd "$cache" && apt-get download -q "${sandbox[@]}" "$kpkg") \
            || say "apt-get download $kpkg failed; trying the cache"
        deb="$(ls -t "$cache/${kpkg}"_*_amd64.deb 2>/dev/null | head -n1 || true)"
    fi
fi
if [ -z "$deb" ]; then
    deb="$(ls -t "$cache"/linux-image-*-amd64_*_amd64.deb 2>/dev/null | head -n1 || true)"
fi
[ -n "$deb" ] || fail "no Debian kernel package (apt-cache depends linux-image-amd64 found '${kpkg}')"

kdir="$cache/$(basename "$deb" .deb)"
if [ ! -f "$kdir/ready" ]; then
    say "unpacking $(basename "$deb")"
    rm -rf "$kdir" "$kdir.tmp"
    mkdir -p "$kdir/modules" "$kdir.tmp"
    dpkg-deb -x "$deb" "$kdir.tmp"
    cp "$(ls "$kdir.tmp"/boot/vmlinuz-* | head -n1)" "$kdir/vmlinuz"
    for m in hid hid-generic uhid; do
        ko="$(find "$kdir.tmp" -path '*/kernel/drivers/hid/*' \
            \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" \) \
            | head -n1)"
        [ -n "$ko" ] || fail "$m.ko is not in $(basename "$deb")"
        # busybox insmod takes plain .ko files only.
        case "$ko" in
            *.xz) xz -dc "$ko" >"$kdir/modules/$m.ko" ;;
            *.zst) zstd -qdc "$ko" >"$kdir/modules/$m.ko" ;;
            *.gz) gzip -dc "$ko" >"$kdir/modules/$m.ko" ;;
            *) cp "$ko" "$kdir/modules/$m.ko" ;;
        esac
    done
    rm -rf "$kdir.tmp"
    touch "$kdir/ready"
fi
# The uncompressed kernel boots about 3 s faster under TCG (qemu enters it through its PVH
# note): the bzImage carries it as one xz stream after the setup code.
if [ ! -f "$kdir/vmlinux" ] && [ ! -f "$kdir/vmlinux.none" ]; then
    off="$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$kdir/vmlinuz" 2>/dev/null \
        | head -n1 | cut -d: -f1 || true)"
    # xz stops at the end of its stream; tail, cut short, must not fail the pipe.
    if [ -n "$off" ] \
        && { tail -c +"$((off + 1))" "$kdir/vmlinuz" || true; } \
        | xz -dc --single-stream >"$kdir/vmlinux.tmp" 2>/dev/null \
        && [ "$(head -c 4 "$kdir/vmlinux.tmp")" = $'\x7fELF' ]; then
        mv "$kdir/vmlinux.tmp" "$kdir/vmlinux"
        say "extracted vmlinux from vmlinuz"
    else
        rm -f "$kdir/vmlinux.tmp"
        touch "$kdir/vmlinux.none"
        say "could not extract vmlinux (booting vmlinuz, slower)"
    fi
fi
kernel="$kdir/vmlinuz"
[ -f "$kdir/vmlinux" ] && kernel="$kdir/vmlinux"

# --- 3. the programs, static --------------------------------------------------------------------
root="$work/root"
rm -rf "$root"
mkdir -p "$root/bin" "$root/lib/modules"
gcc -O2 -Wall -Wextra -static -o "$root/bin/fake_hid" tests/vm/fake_hid.c \
    || fail "fake_hid does not build"

say "building haptwin and the integration tests, static ($triple)"
static=(env RUSTFLAGS="-C target-feature=+crt-static")
"${static[@]}" cargo build --release --target "$triple" --bin haptwin \
    || fail "haptwin does not build static"
"${static[@]}" cargo test --release --target "$triple" --test it --no-run \
    --message-format=json-render-diagnostics >"$work/cargo-it.json" \
    || fail "the integration tests do not build static"
it_exe="$(sed -n 's/.*"name":"it".*"executable":"\([^"]*\)".*/\1/p' "$work/cargo-it.json" | tail -n1)"
[ -n "$it_exe" ] && [ -x "$it_exe" ] || fail "no test executable for 'it' in cargo's output"
strip -o "$root/bin/haptwin" "target/$triple/release/haptwin"
strip -o "$root/bin/it" "$it_exe"
cp /bin/busybox "$root/bin/busybox"
cp "$kdir"/modules/*.ko "$root/lib/modules/"
cp tests/vm/init "$root/init"
chmod 755 "$root/init" "$root/bin/"*
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio"
say "initramfs $(du -h "$work/initramfs.cpio" | cut -f1), kernel $(basename "$kernel") from $(basename "$deb")"

# --- 4. boot --------------------------------------------------------------------------------------
# TCG only: /dev/kvm on these machines is a nested layer that fails. qemu's exit status says
# nothing about the guest; /init's "VM-HID:" lines do.
console="$work/console.log"
say "booting (timeout ${timeout_s} s)"
t0=$(date +%s.%N)
set +e
timeout "$timeout_s" qemu-system-x86_64 -accel tcg -smp 2 -m 1024 \
    -kernel "$kernel" -initrd "$work/initramfs.cpio" \
    -append "console=ttyS0 panic=-1 quiet" \
    -display none -nodefaults -serial stdio -no-reboot </dev/null >"$console" 2>&1
qemu_status=$?
set -e
t1=$(date +%s.%N)
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')

# --- 5. verdict -----------------------------------------------------------------------------------
tr -d '\r' <"$console" >"$console.txt"
if ! grep -q '^VM-HID: done' "$console.txt"; then
    say "the VM did not finish (qemu exit $qemu_status after ${wall} s); console:"
    tail -n 200 "$console.txt"
    fail "the VM did not finish"
fi
# Everything /init printed, prefixed so that the guest's own "test result:" line is not counted
# twice by scripts/test.sh.
sed -n '/^VM-HID: booted/,$p' "$console.txt" | sed 's/^/vm| /'

result() { grep -q "^VM-HID: result $1 PASS" "$console.txt"; }
guest_line="$(grep -o 'tests| test result: .*' "$console.txt" | tail -n1 || true)"
guest_passed="$(echo "$guest_line" | sed -n 's/.* \([0-9]*\) passed.*/\1/p')"
guest_failed="$(echo "$guest_line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')"
passed=${guest_passed:-0}
failed=${guest_failed:-0}
for check in devices demo; do
    if result "$check"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
for step in modules hidraw tests; do
    if ! result "$step"; then
        say "step '$step' failed"
        [ "$failed" -gt 0 ] || failed=1
    fi
done
[ "$passed" -gt 0 ] || failed=$((failed > 0 ? failed : 1))

boot="$(sed -n 's/^VM-HID: booted in \([0-9.]*\) s.*/\1/p' "$console.txt")"
say "VM run ${wall} s wall (guest booted in ${boot:-?} s, TCG)"
if [ "$failed" -eq 0 ]; then
    echo "test result: ok. $passed passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in ${wall}s"
    exit 0
fi
echo "test result: FAILED. $passed passed; $failed failed; 0 ignored; 0 measured; 0 filtered out; finished in ${wall}s"
exit 1
