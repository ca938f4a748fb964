#!/usr/bin/env python3
"""systemd-sandbox: the unit's sandbox holds for the running daemon. It has
no capabilities (and no new privileges, a seccomp filter); in its mount
namespace nothing outside its own directories is writable; in its cgroup
a device the unit does not allow cannot be opened, one it allows can.
The probes run as root inside the daemon's namespace or cgroup: what they
are refused, the kernel refuses for the daemon too.
usage: sandbox-test.py BUILDDIR PREFIX SYSCONFDIR"""
import glob
import json
import os
import pwd

from sdtest import UNIT, DMABROKERCTL, run, check, sh, show, main_pid, start

STATE = {}


def test_started():
    """the daemon runs under the shipped unit"""
    start()
    STATE["pid"] = main_pid()
    print("# %s: pid %d, cgroup %s" % (UNIT, STATE["pid"], show("ControlGroup")))


def test_backends():
    """as its own user, with the installed udev rule and sysusers entry, the daemon opens the system heap, udmabuf and a DRM card"""
    r = sh(DMABROKERCTL, "--system", "--json", "backends", check_ok=True)
    backends = {b["name"]: b for b in json.loads(r.stdout)}
    print("# " + ", ".join("%s %s" % (n, "yes" if b["available"] else "no (%s)" % b["detail"])
                           for n, b in sorted(backends.items())))
    for name in ("heap:system", "udmabuf"):
        check(backends.get(name, {}).get("available"), name + " available", backends.get(name))
    check(any(n.startswith("drm:") and b["available"] for n, b in backends.items()), "a DRM device available",
          backends)


def status_fields(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_no_capabilities():
    """the daemon has no capabilities (effective, permitted, inheritable, bounding, ambient), no_new_privs, and a seccomp filter"""
    st = status_fields(STATE["pid"])
    caps = {k: st[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    print("# uid %s; %s; NoNewPrivs %s; Seccomp %s" % (st["Uid"], caps, st["NoNewPrivs"], st["Seccomp"]))
    check(all(int(v, 16) == 0 for v in caps.values()), "no capabilities", caps)
    user = show("User")
    if user:
        check(int(st["Uid"].split()[0]) == pwd.getpwnam(user).pw_uid, "runs as User=" + user, st["Uid"])
    check(st["NoNewPrivs"] == "1", "no_new_privs", st["NoNewPrivs"])
    check(st["Seccomp"] == "2", "a seccomp filter (mode 2)", st["Seccomp"])


# Probe: in the daemon's mount namespace, try to create a file in each directory; print "PATH errno-name".
WRITE_PROBE = r'''
import errno, os, sys
for d in sys.argv[1:]:
    p = os.path.join(d, ".dmabroker-sandbox-probe")
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(p)
        print(d, "written")
    except OSError as e:
        print(d, errno.errorcode.get(e.errno, str(e.errno)))
'''


def test_no_writes():
    """in the daemon's mount namespace nothing outside its private /tmp (and state directory, if it has one) can be written"""
    ro = ["/", "/etc", "/usr", "/usr/local", "/var", "/var/lib", "/run", "/srv", "/opt", "/home", "/root", "/boot"]
    ro = [d for d in ro if os.path.isdir(d)]
    rw = ["/tmp", "/var/tmp"] + ["/var/lib/" + d for d in show("StateDirectory").split()]
    r = sh("nsenter", "-t", STATE["pid"], "-m", "--", "/usr/bin/python3", "-c", WRITE_PROBE, *ro, *rw)
    check(r.returncode == 0, "the probe ran in the daemon's mount namespace", r.stderr)
    got = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    print("# " + ", ".join("%s %s" % kv for kv in got.items()))
    for d in ro:
        check(got.get(d) in ("EROFS", "EACCES", "ENOENT"), "%s is not writable" % d, got.get(d))
    for d in rw:
        check(got.get(d) == "written", "%s is writable" % d, got.get(d))
    # its /tmp is its own: a file it makes there is not in the system's /tmp
    mark = "/tmp/.dmabroker-private-tmp-%d" % os.getpid()
    r = sh("nsenter", "-t", STATE["pid"], "-m", "--", "/bin/touch", mark)
    check(r.returncode == 0, "touch in its /tmp", r.stderr)
    check(not os.path.exists(mark), "the daemon's /tmp is private (PrivateTmp=)")


# Probe: join the daemon's cgroup (its device filter), then open each device; print "PATH ok|errno-name".
DEVICE_PROBE = r'''
import errno, os, sys
with open(sys.argv[1], "w") as f:
    f.write(str(os.getpid()))
for d in sys.argv[2:]:
    try:
        os.close(os.open(d, os.O_RDWR))
        print(d, "ok")
    except OSError as e:
        print(d, errno.errorcode.get(e.errno, str(e.errno)))
'''


def test_devices():
    """in the daemon's cgroup a device the unit does not allow (a V4L2 node, uinput) cannot be opened; the ones it allows (DRM, dma-buf heaps, udmabuf) can"""
    denied = sorted(glob.glob("/dev/video*"))[:1] + ["/dev/uinput"]
    allowed = sorted(glob.glob("/dev/dri/card*"))[:1] + ["/dev/dma_heap/system", "/dev/udmabuf"]
    for d in denied + allowed:
        check(os.path.exists(d), "the test bed has " + d)
    check(len(denied) == 2 and len(allowed) == 3, "a device of each kind", denied, allowed)
    # the probe outside the cgroup opens all of them: what fails inside is the unit's device policy
    procs = "/sys/fs/cgroup%s/cgroup.procs" % show("ControlGroup")
    outside = sh("/usr/bin/python3", "-c", DEVICE_PROBE, "/sys/fs/cgroup/system.slice/vmtest.service/cgroup.procs",
                 *denied, *allowed)
    check(outside.returncode == 0 and outside.stdout.count(" ok") == 5, "root opens all five outside",
          outside.stdout, outside.stderr)
    r = sh("/usr/bin/python3", "-c", DEVICE_PROBE, procs, *denied, *allowed)
    check(r.returncode == 0, "the probe joined %s" % procs, r.stderr)
    got = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    print("# in the daemon's cgroup: " + ", ".join("%s %s" % kv for kv in got.items()))
    for d in denied:
        check(got.get(d) == "EPERM", "%s refused by the device policy" % d, got.get(d))
    for d in allowed:
        check(got.get(d) == "ok", "%s allowed" % d, got.get(d))
    check(main_pid() == STATE["pid"], "the daemon still runs")


run([test_started, test_backends, test_no_capabilities, test_no_writes, test_devices])
