#!/bin/sh
# Runs "$@", under valgrind memcheck when DMABROKER_VALGRIND=1 (meson test
# --setup valgrind): any memory error and any definite or indirect leak at
# exit make it exit 99 (--error-exitcode), which fails the test whatever its
# TAP said. The same options as VALGRIND in busfixture.py (the daemon's).
if [ "${DMABROKER_VALGRIND:-}" = 1 ]; then
	exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=99 "$@"
fi
exec "$@"
