#!/bin/busybox sh
# /init of the test bed's initramfs (busybox). Mounts the host root read-only
# over 9p with a tmpfs overlay on top, gives it the guest's own proc, sys,
# dev, debugfs and /run, chroots and runs /run/dmabroker-vm/cmd, which the
# host runner (tests/vm/vm-run) wrote. Output, exit status and the kernel log
# go back through the writable share mounted at /run/dmabroker-vm.
# When the runner wrote a setup script (vm-run --systemd), the install tree it
# made (if any) is copied onto the root, the script prepares the root, and
# systemd becomes PID 1 on it (switch_root): its vmtest.service runs the
# command the same way (/run/dmabroker-vm/run-cmd).
/bin/busybox mkdir -p /proc /sys /dev /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null

fail() {
	echo "vm-init: $*" >&2
	echo 125 > /run-share/status 2>/dev/null || echo 125 > /newroot/run/dmabroker-vm/status
	sync
	reboot -f
}

mkdir -p /host /rw /newroot /run-share
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none vmrun /run-share ||
	fail "cannot mount the run share"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro hostroot /host ||
	fail "cannot mount the host root"
mount -t tmpfs -o mode=0755 rw /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	fail "cannot mount the overlay"

r=/newroot
mount -t proc proc $r/proc
mount -t sysfs sys $r/sys
mount -t devtmpfs dev $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $r/dev/pts
mount -t tmpfs -o mode=1777 shm $r/dev/shm
mount -t debugfs debugfs $r/sys/kernel/debug
mount -t tmpfs -o mode=0755 run $r/run
mkdir -p $r/run/dmabroker-vm $r/run/udev/data
# a bind, not --move: a moved mount keeps its older id, below its new parent
# /run's, and systemd's ProtectSystem=strict then leaves all of /run writable
# in a unit's namespace (systemd 252, seen by tests/systemd/sandbox-test.py)
mount --bind /run-share $r/run/dmabroker-vm && umount /run-share ||
	fail "cannot bind the run share into the root"
s=$r/run/dmabroker-vm
hostname dmabroker-vm

if [ -f $s/setup ]; then
	if [ -d $s/install ]; then
		cp -a $s/install/. $r/ || fail "cannot copy the install tree"
	fi
	chroot $r /bin/sh /run/dmabroker-vm/setup </dev/null >$s/setup.log 2>&1 ||
		{ cat $s/setup.log >&2; fail "the systemd set-up failed"; }
	exec switch_root $r /lib/systemd/systemd
fi

cat /proc/uptime > $s/started

chroot $r /bin/sh /run/dmabroker-vm/cmd </dev/null >$s/stdout 2>$s/stderr
echo $? > $s/status.tmp
dmesg > $s/dmesg
mv $s/status.tmp $s/status
sync
reboot -f
