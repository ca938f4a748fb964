#!/bin/sh
# gl-usage (host): dmabroker-gl's command line: --help documents every
# option; bad usage exits 2 naming the option; a card that is not there
# exits 1 naming it (the host has no /dev/dri; no GL is needed for this).
set -u
gl=$1
n=0 bad=0
t() { # t DESCRIPTION WANT-STATUS WANT-TEXT ARG...
	desc=$1 want=$2 text=$3
	shift 3
	n=$((n + 1))
	out=$("$gl" "$@" 2>&1)
	rc=$?
	if [ $rc -eq "$want" ] && printf '%s\n' "$out" | grep -qF -- "$text"; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc: exit $rc (want $want), output:"
		printf '%s\n' "$out" | sed 's/^/# /'
		bad=1
	fi
}
echo "1..8"
t "--help: usage, exit 0" 0 "Usage: dmabroker-gl [OPTION]..." --help
help=$("$gl" --help)
n=$((n + 1)) missing=""
for o in --device --input --output --mode --buffers --consumers --frames --wait --session --quiet --help; do
	printf '%s\n' "$help" | grep -q -- "$o" || missing="$missing $o"
done
[ -z "$missing" ] && echo "ok $n - --help documents every option" || { echo "not ok $n - undocumented:$missing"; bad=1; }
t "a bad --mode: exit 2, named" 2 "--mode: fifo or mailbox" --mode lifo
t "--buffers out of range: exit 2" 2 "--buffers: 2 to 16" --buffers 17
t "--consumers out of range: exit 2" 2 "--consumers: 0 to 8" --consumers 9
t "--frames 0: exit 2" 2 "--frames: a positive number" --frames 0
t "an extra argument: exit 2" 2 "unexpected argument 'extra'" extra
t "a card that is not there: exit 1, named" 1 "no DRM card matching /dev/dri/card63" --device /dev/dri/card63
exit $bad
