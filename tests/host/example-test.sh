#!/bin/sh
# The README's example: a writer and a reader process share a buffer and
# every frame the reader sees is whole. Run under with-daemon.py.
set -eu
example=$1
out=$(mktemp)
trap 'rm -f "$out"; kill $writer 2>/dev/null || true' EXIT
"$example" write 400 >"$out" &
writer=$!
for _ in $(seq 50); do [ -s "$out" ] && break; sleep 0.1; done
token=$(head -n1 "$out")
echo "1..2"
[ ${#token} -eq 32 ] && echo "ok 1 - the writer prints a token" || { echo "not ok 1 - token '$token'"; exit 1; }
result=$("$example" read "$token" 200)
echo "# $result"
case "$result" in
"200 frames read, 0 torn,"*) echo "ok 2 - the reader reads 200 frames, none torn" ;;
*) echo "not ok 2 - reader: $result"; exit 1 ;;
esac
wait $writer
