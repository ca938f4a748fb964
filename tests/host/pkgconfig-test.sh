#!/bin/sh
# A client builds and links with nothing but pkg-config's answer for
# libdmabroker (the uninstalled .pc meson writes next to the build).
# usage: pkgconfig-test.sh BUILD-DIR CLIENT.c [CC...]: CC is the C compiler
# the project is built with (cc by default; a cross build's, whose client
# then runs through binfmt_misc, and PKG_CONFIG_LIBDIR names the target's
# .pc files).
set -eu
build=$1 src=$2
shift 2
[ $# -gt 0 ] || set -- cc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PKG_CONFIG_PATH="$build/meson-uninstalled"
flags=$(pkg-config --cflags --libs libdmabroker)
echo "# pkg-config: $flags"
echo "# compiler: $*"
"$@" -std=c11 -Wall -Werror -o "$tmp/client" "$src" $flags
LD_LIBRARY_PATH="$build/client-lib" "$tmp/client"
echo "1..1"
echo "ok 1 - a client built from pkg-config's flags links and runs"
