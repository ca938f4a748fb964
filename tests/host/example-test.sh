#!/bin/sh
# The example of docs/ACCESS-MODEL.md: a writer and a reader process share a buffer; every
# frame the reader sees is whole, is one the writer wrote (every pixel of
# frame k is k, 1 <= k <= the writer's count; the writer gives its token
# only once frame 1 is in, so even the first read must see a written frame),
# and none is older than the one read before it. Run under with-daemon.py.
set -eu
example=$1
frames=400
out=$(mktemp)
trap 'rm -f "$out"; kill $writer 2>/dev/null || true' EXIT
"$example" write $frames >"$out" &
writer=$!
for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.1; done
token=$(head -n1 "$out")
echo "1..3"
[ ${#token} -eq 32 ] && echo "ok 1 - the writer prints a token" || { echo "not ok 1 - token '$token'"; exit 1; }
rc=0
result=$("$example" read "$token" 200) || rc=$?
echo "# $result"
# "200 frames read, 0 torn, 0 out of order, first frame F, last frame L"
line='^200 frames read, 0 torn, 0 out of order, first frame \([0-9]*\), last frame \([0-9]*\)$'
first=$(echo "$result" | sed -n "s/$line/\\1/p")
last=$(echo "$result" | sed -n "s/$line/\\2/p")
if [ $rc -eq 0 ] && [ -n "$first" ] && [ -n "$last" ] && [ "$first" -ge 1 ] && [ "$first" -le "$last" ] &&
	[ "$last" -le $frames ]; then
	echo "ok 2 - the reader reads 200 frames, none torn, each one the writer wrote" \
		"($first..$last of 1..$frames), in order"
else
	echo "not ok 2 - reader (exit $rc): $result"
	exit 1
fi
rc=0
wait $writer || rc=$?
if [ $rc -eq 0 ]; then
	echo "ok 3 - the writer wrote its $frames frames and exited 0"
else
	echo "not ok 3 - writer exit $rc"
	exit 1
fi
