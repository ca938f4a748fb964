#!/bin/bash
# Build (or reuse) the dmabroker test kernel.
#
# usage: tests/vm/build-kernel.sh [--print-path] [--force]
#
# Source: Debian's linux-source-6.12 package (/usr/src/linux-source-6.12.tar.xz).
# Config: `make tinyconfig`, then tests/vm/kernel.config merged on top, then
# `make olddefconfig`; every option of the fragment is verified afterwards.
# The bzImage is cached under ${DMABROKER_CACHE:-~/.cache/dmabroker}/kernel/,
# keyed by the source package version and the fragment's hash, so a second
# run on the same machine only prints the path. Prints the bzImage path on
# stdout; progress goes to stderr.
#
#   --print-path  print where the bzImage for this fragment lives (or would
#                 live) and exit 0 if it is built, 1 if not; builds nothing
#   --force       rebuild even when a cached bzImage exists
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fragment="$here/kernel.config"
pkg=linux-source-6.12
tarball=/usr/src/$pkg.tar.xz
cache=${DMABROKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dmabroker}
# Bump when the way the kernel is built changes (not the fragment: that is hashed).
recipe=1

die() { echo "build-kernel: error: $*" >&2; exit 1; }
log() { echo "build-kernel: $*" >&2; }

print_only=0 force=0
for a in "$@"; do
	case "$a" in
	--print-path) print_only=1 ;;
	--force) force=1 ;;
	-h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$a' (see --help)" ;;
	esac
done

version=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
	die "package $pkg is not installed: apt-get install $pkg (./run test does this)"
[ -n "$version" ] && [ -r "$tarball" ] ||
	die "$tarball is missing although $pkg $version is registered; reinstall $pkg"

hash=$( { echo "recipe=$recipe"; cat "$fragment"; } | sha256sum | cut -c1-16)
key="$version-$hash"
out="$cache/kernel/$key/bzImage"

if [ "$print_only" = 1 ]; then
	echo "$out"
	[ -s "$out" ]
	exit
fi

mkdir -p "$cache/kernel"
exec 9>"$cache/kernel/.lock"
flock 9   # one build at a time per machine; a waiter then finds the result

if [ -s "$out" ] && [ "$force" = 0 ]; then
	log "reusing $out"
	echo "$out"
	exit 0
fi

start=$(date +%s)
src="$cache/src/$pkg-$version"
if [ ! -f "$src/.extracted" ]; then
	log "extracting $tarball ($version)"
	rm -rf "$src"; mkdir -p "$src"
	tar -xJf "$tarball" -C "$src" --strip-components=1
	touch "$src/.extracted"
fi

# One build tree per source version: a changed fragment rebuilds incrementally.
obj="$cache/build/$pkg-$version"
mkdir -p "$obj"
jobs=$(nproc)
mk() { make -s -C "$src" O="$obj" ARCH=x86_64 "$@"; }

log "configuring: tinyconfig + $(basename "$fragment")"
mk tinyconfig >/dev/null
KCONFIG_CONFIG="$obj/.config" "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" \
	"$obj/.config" "$fragment" >/dev/null
mk olddefconfig >/dev/null

# Verify: every line of the fragment must hold in the final .config.
bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		opt=${line%%=*}
		if ! grep -qxF "$line" "$obj/.config"; then
			got=$(grep -E "^($opt=|# $opt is not set)" "$obj/.config" || echo "absent")
			echo "build-kernel: wanted $line, got: $got" >&2; bad=1
		fi ;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }; opt=${opt%% *}
		if grep -q "^$opt=" "$obj/.config"; then
			echo "build-kernel: wanted $opt off, got: $(grep "^$opt=" "$obj/.config")" >&2; bad=1
		fi ;;
	esac
done < "$fragment"
[ "$bad" = 0 ] || die "kernel config does not match $fragment (see above); fix the fragment's dependencies"

log "building bzImage with $jobs jobs (about 3 minutes on 2 cores)"
mk -j"$jobs" bzImage >"$obj/build.log" 2>&1 || {
	tail -n 40 "$obj/build.log" >&2
	die "kernel build failed; full log in $obj/build.log"
}
mkdir -p "$(dirname "$out")"
cp "$obj/arch/x86/boot/bzImage" "$out.tmp"
cp "$obj/.config" "$(dirname "$out")/config"
mv "$out.tmp" "$out"
log "built $out in $(( $(date +%s) - start )) s"
echo "$out"
