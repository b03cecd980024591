#!/usr/bin/env bash
# A real OpenXR runtime for CI: Monado 25 in a Debian trixie chroot (docs/xr-ci.md).
#
# Monado 25 is packaged only in Debian trixie, and its client library needs trixie's glibc, so
# the runtime (monado-service) and the OpenXR app both run inside a trixie chroot made with
# debootstrap. A binary built on the bookworm host runs there unchanged: the repository (or
# HAPTWIN_MONADO_BIND) is bind-mounted at the same path inside, so target/... paths are the same.
# Monado runs headless: null compositor (XRT_COMPOSITOR_NULL; paces at 20 Hz, recommends
# 320 x 240 per eye), simulated HMD with two simple controllers, Vulkan on Mesa's lavapipe.
#
# Usage (as root, or with sudo on the path):
#   scripts/monado-chroot.sh ensure                builds the chroot once (about 1 GB, minutes)
#   scripts/monado-chroot.sh run [--] CMD ARGS...  starts monado-service, runs CMD inside the
#                                                  chroot in the current directory, returns its status
#   scripts/monado-chroot.sh shell                 the same with an interactive bash
#
# Environment:
#   HAPTWIN_MONADO_CHROOT    chroot dir (default /var/cache/haptwin/monado-trixie); delete it,
#                            or its .haptwin-complete marker, to rebuild
#   HAPTWIN_MONADO_BIND      host dirs bind-mounted at the same paths inside, ':'-separated
#                            (default: the git work tree holding $PWD, else $PWD); CARGO_TARGET_DIR,
#                            when set, is bound too, so binaries built there are reachable
#   HAPTWIN_MONADO_TIMEOUT   seconds to wait for the service's IPC socket (default 30)
#   HAPTWIN_MONADO_EXIT_ON_DISCONNECT  1: the service exits when its first client disconnects
#                            (default 0: it lives until CMD ends, so CMD may create several
#                            OpenXR instances one after the other, e.g. a test binary)
#   XRT_*, SIMULATED_*, IPC_*, OXR_* (Monado's own settings) set on the host override the
#   service's defaults below and reach CMD too; RUST_*, HAPTWIN_*, CARGO_*, VK_LOADER_DEBUG,
#   VK_INSTANCE_LAYERS, XR_LOADER_DEBUG and TERM reach CMD. Nothing else of the host environment
#   does.
#
# Mounts (/proc, /sys, /dev, /dev/pts, /dev/shm and the bind dir) live only while `run` runs;
# an EXIT trap unmounts them on success, failure and Ctrl-C alike. A lock file
# ($chroot.lock) serialises runs and builds on one chroot.
set -euo pipefail

CHROOT="${HAPTWIN_MONADO_CHROOT:-/var/cache/haptwin/monado-trixie}"
CHROOT="${CHROOT%/}"
MARKER="$CHROOT/.haptwin-complete"
SUITE=trixie
# What the chroot holds: the runtime, the OpenXR loader, lavapipe, the Vulkan loader and the
# validation layers (the app may enable them). A change here rebuilds the chroot.
PACKAGES="monado-service,libopenxr1-monado,libopenxr-loader1,mesa-vulkan-drivers,libvulkan1,vulkan-validationlayers"
XR_RUNTIME_JSON_IN=/usr/share/openxr/1/openxr_monado.json
VK_ICD_IN=/usr/share/vulkan/icd.d/lvp_icd.json
PATH_IN=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "monado-chroot: $*" >&2; }
die() { say "error: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    # Everything here (debootstrap, mount, chroot) needs root: re-run the whole script with sudo.
    command -v sudo >/dev/null || die "needs root (or sudo)"
    exec sudo --preserve-env "$0" "$@"
fi

# Serialise builds and runs on one chroot (fd 9 stays open for the script's lifetime; children
# get it closed, so an orphan of a killed run does not hold the lock).
lock() {
    mkdir -p "$(dirname "$CHROOT")"
    exec 9>"$CHROOT.lock"
    if ! flock -n 9; then
        say "waiting for another monado-chroot.sh on $CHROOT"
        flock -w 1800 9 || die "timed out waiting for the lock $CHROOT.lock"
    fi
}

# Mount points at or under $1, deepest first.
mounts_under() {
    local dir
    dir="$(readlink -f "$1")"
    awk -v d="$dir" '{ gsub(/\\040/, " ", $5); if ($5 == d || index($5, d "/") == 1) print $5 }' \
        /proc/self/mountinfo | sort -r
}

# Unmounts everything at or under $1; true when nothing is left mounted there.
unmount_under() {
    local m
    while read -r m; do
        [ -n "$m" ] || continue
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"
    done < <(mounts_under "$1")
    [ -z "$(mounts_under "$1")" ]
}

# The host's Debian mirror: the first stanza's URIs (deb822), else the first `deb` line.
host_mirror() {
    local m=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        m="$(awk 'BEGIN{RS=""} NR==1' /etc/apt/sources.list.d/debian.sources \
            | awk '$1 == "URIs:" { print $2; exit }')"
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)"
    fi
    [ -n "$m" ] || die "found no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
    echo "$m"
}

pkg_versions() {
    chroot "$CHROOT" dpkg-query -W -f='${Package} ${Version}\n' ${PACKAGES//,/ } 2>/dev/null
}

is_complete() {
    [ -f "$MARKER" ] && [ "$(head -n1 "$MARKER")" = "packages: $PACKAGES" ]
}

ensure() {
    if is_complete; then
        return 0
    fi
    local start=$SECONDS
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap on the host"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
    fi
    if [ -e "$CHROOT" ]; then
        # A half-built (or outdated) chroot: remove it, but never through a live mount.
        say "removing the incomplete chroot $CHROOT"
        unmount_under "$CHROOT" || die "mounts remain under $CHROOT; not removing it"
        rm -rf --one-file-system "$CHROOT"
    fi
    local mirror
    mirror="$(host_mirror)"
    say "building the $SUITE chroot in $CHROOT from $mirror (about 1 GB; minutes)"
    mkdir -p "$CHROOT"
    local dlog="$CHROOT.debootstrap.log"
    # Interrupted (Ctrl-C, a CI timeout): leave no mount behind; no marker means a rebuild later.
    trap 'unmount_under "$CHROOT" >/dev/null 2>&1 || true' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$CHROOT" "$mirror" >"$dlog" 2>&1 9>&-; then
        tail -n 30 "$dlog" >&2
        unmount_under "$CHROOT" || true
        die "debootstrap failed (log: $dlog; the chroot is rebuilt on the next run)"
    fi
    # debootstrap mounts /proc and /sys inside during its second stage; make sure they are gone.
    unmount_under "$CHROOT" || die "debootstrap left mounts under $CHROOT"
    trap - EXIT INT TERM
    # Keep the download cache out of the 1 GB.
    chroot "$CHROOT" apt-get clean >/dev/null 2>&1 || true
    [ -f "$CHROOT$XR_RUNTIME_JSON_IN" ] || die "no $XR_RUNTIME_JSON_IN in the chroot"
    [ -f "$CHROOT$VK_ICD_IN" ] || die "no $VK_ICD_IN in the chroot"
    [ -x "$CHROOT/usr/bin/monado-service" ] || die "no monado-service in the chroot"
    { echo "packages: $PACKAGES"; echo "built: $(date -u +%FT%TZ) from $mirror"; pkg_versions; } >"$MARKER.tmp"
    mv "$MARKER.tmp" "$MARKER"
    say "chroot ready in $((SECONDS - start)) s, $(du -sh --one-file-system "$CHROOT" | cut -f1)"
}

print_version() {
    say "Monado $(awk '$1 == "monado-service" { print $2 }' "$MARKER") in $CHROOT"
}

# --- run ------------------------------------------------------------------------------------
MOUNTED=()      # mount points, in mount order
SERVICE_PID=""
RUNDIR=""       # host path of the run dir (inside the chroot: ${RUNDIR#$CHROOT})
LOG=""

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ -n "$SERVICE_PID" ] && kill -0 "$SERVICE_PID" 2>/dev/null; then
        kill -TERM "$SERVICE_PID" 2>/dev/null || true
        for _ in $(seq 1 30); do
            kill -0 "$SERVICE_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVICE_PID" 2>/dev/null; then
            say "monado-service ignored SIGTERM for 3 s: SIGKILL"
            kill -KILL "$SERVICE_PID" 2>/dev/null || true
        fi
        wait "$SERVICE_PID" 2>/dev/null || true
    fi
    # Anything else still running inside the chroot (CMD, when the script itself was signalled,
    # or what CMD left behind) would keep the mounts busy.
    end_chroot_processes
    local idx
    for ((idx = ${#MOUNTED[@]} - 1; idx >= 0; idx--)); do
        umount "${MOUNTED[idx]}" 2>/dev/null || umount -l "${MOUNTED[idx]}" 2>/dev/null \
            || say "could not unmount ${MOUNTED[idx]}"
    done
    # The run dir holds no mount (checked) before it is removed.
    if [ -n "$RUNDIR" ] && [ -d "$RUNDIR" ] && [ -z "$(mounts_under "$RUNDIR")" ]; then
        rm -rf --one-file-system "$RUNDIR"
    fi
    if [ -n "$(mounts_under "$CHROOT")" ]; then
        say "warning: mounts remain under $CHROOT:"; mounts_under "$CHROOT" >&2
    fi
    exit "$status"
}

# Processes whose root directory is the chroot.
chroot_pids() {
    local p root
    root="$(readlink -f "$CHROOT")"
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && echo "${p#/proc/}"
    done
    return 0
}

# Ends every process whose root is this chroot, SIGTERM then SIGKILL after 3 s. The lock keeps
# other runs out, so these belong to this run or to one that died without its trap (SIGKILL).
end_chroot_processes() {
    local sig n p
    for sig in TERM KILL; do
        n=0
        for p in $(chroot_pids); do kill -"$sig" "$p" 2>/dev/null && n=$((n + 1)); done
        [ "$n" -gt 0 ] || break
        [ "$sig" = KILL ] || say "ending $n process(es) left in the chroot"
        for _ in $(seq 1 30); do [ -n "$(chroot_pids)" ] || break; sleep 0.1; done
    done
}

bind() {   # bind SRC DST (DST inside the chroot, host path)
    mkdir -p "$2"
    mount --bind "$1" "$2"
    MOUNTED+=("$2")
    mount --make-private "$2" 2>/dev/null || true
}

run() {
    [ $# -gt 0 ] || die "run: no command given"
    local foreground=0
    if [ "$1" = "--foreground" ]; then foreground=1; shift; fi
    local cwd d binds=() bind_list dirs
    cwd="$(pwd -P)"
    bind_list="${HAPTWIN_MONADO_BIND:-$(git rev-parse --show-toplevel 2>/dev/null || pwd -P)}"
    if [ -n "${CARGO_TARGET_DIR:-}" ] && [ -d "$CARGO_TARGET_DIR" ]; then
        bind_list="$bind_list:$CARGO_TARGET_DIR"
    fi
    IFS=: read -r -a dirs <<<"$bind_list"
    for d in "${dirs[@]}"; do
        [ -n "$d" ] || continue
        [ -d "$d" ] || die "bind dir $d is not a directory"
        d="$(readlink -f "$d")"
        # Never shadow the chroot's own system dirs, nor bind the chroot into itself.
        case "$d" in
            /|/usr|/usr/*|/etc|/etc/*|/var|/bin|/bin/*|/sbin|/sbin/*|/lib|/lib/*|/lib64|/lib64/*\
            |/proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/run|/run/*) die "refusing to bind $d";;
        esac
        case "$d/" in "$(readlink -f "$CHROOT")"/*) die "a bind dir may not be inside the chroot";; esac
        case "$(readlink -f "$CHROOT")/" in "$d"/*) die "a bind dir may not contain the chroot ($d)";; esac
        # Skip a dir already under another one (it is reachable through that mount).
        local b covered=0
        for b in "${binds[@]}"; do case "$d/" in "$b"/*) covered=1;; esac; done
        [ "$covered" -eq 1 ] || binds+=("$d")
    done

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    # Start from a clean state: a run killed by SIGKILL (which skips the trap) may have left
    # processes and mounts; with the lock held, anything in or under the chroot is such a leftover.
    end_chroot_processes
    if [ -n "$(mounts_under "$CHROOT")" ]; then
        say "unmounting leftovers of an earlier run: $(mounts_under "$CHROOT" | tr '\n' ' ')"
        unmount_under "$CHROOT" || die "stale mounts under $CHROOT that cannot be unmounted"
    fi
    for d in "$CHROOT"/run/haptwin-xr.*; do
        if [ -d "$d" ] && [ -z "$(mounts_under "$d")" ]; then rm -rf --one-file-system "$d"; fi
    done

    bind /proc "$CHROOT/proc"
    bind /sys "$CHROOT/sys"
    bind /dev "$CHROOT/dev"
    bind /dev/pts "$CHROOT/dev/pts"
    if [ -d /dev/shm ]; then bind /dev/shm "$CHROOT/dev/shm"; fi
    for d in "${binds[@]}"; do bind "$d" "$CHROOT$d"; done

    # A private run dir (XDG_RUNTIME_DIR and HOME) per run, inside the chroot's /run.
    mkdir -p "$CHROOT/run"
    RUNDIR="$(mktemp -d "$CHROOT/run/haptwin-xr.XXXXXX")"
    chmod 700 "$RUNDIR"
    mkdir -p "$RUNDIR/home"
    local rundir_in="${RUNDIR#"$CHROOT"}"
    LOG="$(mktemp "${TMPDIR:-/tmp}/haptwin-monado-service.XXXXXX.log")"

    local common=(PATH="$PATH_IN" HOME="$rundir_in/home" XDG_RUNTIME_DIR="$rundir_in"
                  VK_DRIVER_FILES="$VK_ICD_IN" VK_ICD_FILENAMES="$VK_ICD_IN" LANG=C.UTF-8)
    # Monado's settings given on the host (later assignments win in env(1)).
    local monado_env=() name
    for name in $(compgen -e); do
        case "$name" in XRT_*|SIMULATED_*|IPC_*|OXR_*) monado_env+=("$name=${!name}");; esac
    done
    say "starting monado-service (log: $LOG)"
    # Null compositor (no display; paces at 20 Hz), simulated HMD and two simple controllers,
    # no stdin; HOME must be set or the service aborts.
    chroot "$CHROOT" /usr/bin/env -i "${common[@]}" \
        XRT_COMPOSITOR_NULL=1 SIMULATED_ENABLE=1 SIMULATED_LEFT=simple SIMULATED_RIGHT=simple \
        XRT_NO_STDIN=1 IPC_EXIT_ON_DISCONNECT="${HAPTWIN_MONADO_EXIT_ON_DISCONNECT:-0}" \
        "${monado_env[@]}" /usr/bin/monado-service </dev/null >"$LOG" 2>&1 9>&- &
    SERVICE_PID=$!

    # Monado listens on $XDG_RUNTIME_DIR/monado_comp_ipc.
    local sock="$RUNDIR/monado_comp_ipc" timeout="${HAPTWIN_MONADO_TIMEOUT:-30}" t0=$SECONDS
    until [ -S "$sock" ]; do
        if ! kill -0 "$SERVICE_PID" 2>/dev/null; then
            tail -n 40 "$LOG" >&2
            die "monado-service exited before it listened (log: $LOG)"
        fi
        if [ $((SECONDS - t0)) -ge "$timeout" ]; then
            tail -n 40 "$LOG" >&2
            die "no IPC socket ${sock#"$CHROOT"} after $timeout s (log: $LOG)"
        fi
        sleep 0.1
    done
    say "monado-service up (pid $SERVICE_PID, socket ${sock#"$CHROOT"}, $((SECONDS - t0)) s)"

    # The host variables worth passing to the app.
    local pass=()
    for name in $(compgen -e); do
        case "$name" in
            RUST_*|HAPTWIN_*|CARGO_*|VK_LOADER_DEBUG|VK_INSTANCE_LAYERS|XR_LOADER_DEBUG|TERM|XRT_*|SIMULATED_*|IPC_*|OXR_*)
                pass+=("$name=${!name}");;
        esac
    done
    local inside=0
    for d in "${binds[@]}"; do case "$cwd/" in "$d"/*) inside=1;; esac; done
    [ "$inside" -eq 1 ] || { say "$cwd is not inside a bind dir: running CMD in /"; cwd=/; }

    local status=0 app=(chroot "$CHROOT" /usr/bin/env -i "${pass[@]}" "${common[@]}"
        XR_RUNTIME_JSON="$XR_RUNTIME_JSON_IN" /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$cwd" "$@")
    if [ "$foreground" -eq 1 ]; then
        # `shell`: in the foreground, so an interactive bash owns Ctrl-C.
        "${app[@]}" 9>&- || status=$?
    else
        # In the background with our stdin, so that a SIGTERM/SIGINT to this script runs the
        # trap at once (bash defers traps while a foreground child runs), e.g. under `timeout`.
        "${app[@]}" <&0 9>&- &
        wait $! || status=$?
    fi
    if ! kill -0 "$SERVICE_PID" 2>/dev/null && [ "$status" -ne 0 ]; then
        say "monado-service is gone; the last lines of its log ($LOG):"
        tail -n 20 "$LOG" >&2
    fi
    return "$status"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    ensure)
        lock
        t0=$SECONDS
        ensure
        print_version
        say "ensure took $((SECONDS - t0)) s"
        ;;
    run)
        [ "${1:-}" = "--" ] && shift
        lock; ensure; print_version
        run "$@"
        ;;
    shell)
        lock; ensure; print_version
        run --foreground /bin/bash -i
        ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
