"""A small TAP runner for the Python tests: each test is a function; an
AssertionError (or any exception) fails that test with its message, Skip
skips it with its reason."""
import sys
import traceback


class Skip(Exception):
    """raised by a test that cannot run here: a TAP skip, with the reason"""


def run(tests):
    print("1..%d" % len(tests), flush=True)
    failed = 0
    for i, fn in enumerate(tests, 1):
        name = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
        try:
            fn()
            print("ok %d - %s" % (i, name), flush=True)
        except Skip as e:
            print("ok %d - %s # SKIP %s" % (i, name, e), flush=True)
        except Exception:
            failed += 1
            for line in traceback.format_exc().rstrip().splitlines():
                print("# " + line)
            print("not ok %d - %s" % (i, name), flush=True)
    sys.exit(1 if failed else 0)


def check(cond, msg, *more):
    if not cond:
        raise AssertionError(msg + "".join("\n" + str(m) for m in more))
