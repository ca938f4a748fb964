#!/bin/sh
# Runs "$@", under valgrind memcheck (errors and definite/indirect leaks
# fail, status 99) when DMABROKER_VALGRIND=1 (meson test --setup valgrind).
if [ "${DMABROKER_VALGRIND:-}" = 1 ]; then
	exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=99 "$@"
fi
exec "$@"
