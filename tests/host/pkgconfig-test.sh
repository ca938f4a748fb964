#!/bin/sh
# A client builds and links with nothing but pkg-config's answer for
# libdmabroker (the uninstalled .pc meson writes next to the build).
set -eu
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PKG_CONFIG_PATH="$build/meson-uninstalled"
flags=$(pkg-config --cflags --libs libdmabroker)
echo "# pkg-config: $flags"
cc -std=c11 -Wall -Werror -o "$tmp/client" "$src" $flags
LD_LIBRARY_PATH="$build/client-lib" "$tmp/client"
echo "1..1"
echo "ok 1 - a client built from pkg-config's flags links and runs"
