#!/bin/sh
# The demo, inside the test bed (tests/vm/vm-run), under a session-bus
# dmabrokerd (tests/common/with-daemon.py):
#
#   vivid --(V4L2 DMABUF)--> dmabroker-camera --stream "demo"--> dmabroker-display on vkms
#                                                           \--> dmabroker-display on virtio-gpu
#
# then, when dmabroker-wayland, dmabroker-gl and Weston are there, the
# compositor on vkms:
#
#   vivid --> dmabroker-camera --"live"--> dmabroker-gl on vkms --"live-gl"--> dmabroker-wayland in Weston
#
# usage: demo-guest.sh BUILD_DIR FRAMES [COMPOSITOR_FRAMES]
# (COMPOSITOR_FRAMES: the compositor part's, default FRAMES)
# Writes into $DMABROKER_VM_ARTIFACTS: the logs, camera-last.ppm (the last
# captured frame), vkms-writeback.ppm (vkms's output read back through its
# writeback connector), virtio-gpu.png (qemu's screendump of virtio-gpu,
# asked for from inside the guest), streams.txt (dmabrokerctl streams);
# for the compositor: live-last.ppm (the camera's last frame), weston.png
# (weston-screenshooter's screenshot), weston.log, gl.log, wayland.log, or
# compositor-skipped.txt saying why it did not run.
set -u
build=$1
frames=$2
compositor_frames=${3:-$2}
out=${DMABROKER_VM_ARTIFACTS:?not inside the test bed}
src=$(cd "$(dirname "$0")/../.." && pwd)
ctl="$build/tools/dmabrokerctl --session"

"$build/tools/dmabroker-display" --session --device vkms --stream demo --input none --wait 120 \
	--writeback "$out/vkms-writeback.ppm" >"$out/display-vkms.log" 2>&1 &
vkms=$!
"$build/tools/dmabroker-display" --session --device virtio_gpu --stream demo --input none --wait 120 \
	>"$out/display-virtio-gpu.log" 2>&1 &
vgpu=$!
"$build/tools/dmabroker-camera" --session --stream demo --format XR24 --width 640 --height 480 \
	--consumers 2 --mode mailbox --buffers 5 --frames "$frames" --save-last "$out/camera-last.ppm" \
	>"$out/camera.log" 2>&1 &
cam=$!
sleep 4
{ echo "# while running"; $ctl streams; } >"$out/streams.txt" 2>&1
wait $cam
echo "camera exit $?" >"$out/status.txt"

# both displays keep showing the last frame once the stream has ended
i=0
until grep -q "stream ended" "$out/display-vkms.log" && grep -q "stream ended" "$out/display-virtio-gpu.log"; do
	i=$((i + 1))
	[ $i -gt 200 ] && { echo "displays did not finish" >>"$out/status.txt"; break; }
	sleep 0.1
done
{ echo "# after the camera left"; $ctl streams; } >>"$out/streams.txt" 2>&1
$ctl --json streams >"$out/streams.json" 2>&1
"$src/tests/vm/vm-screendump" virtio-gpu virtio-gpu.png >/dev/null 2>>"$out/status.txt" ||
	echo "screendump failed" >>"$out/status.txt"
kill -TERM $vkms $vgpu
wait $vkms
echo "display-vkms exit $?" >>"$out/status.txt"
wait $vgpu
echo "display-virtio-gpu exit $?" >>"$out/status.txt"

compositor() {
	xdg=$(mktemp -d) # 0700
	cat >"$xdg/weston.ini" <<-INI
	[core]
	idle-time=0
	[shell]
	panel-position=none
	background-color=0xff202020
	locking=false
	animation=none
	startup-animation=none
	[output]
	name=Virtual-1
	mode=640x480
	INI
	card=
	for d in /sys/class/drm/card[0-9]*; do
		grep -qx "MODALIAS=platform:vkms" "$d/device/uevent" 2>/dev/null && card=${d##*/}
	done
	# Weston first: it must be DRM master of vkms (a seat of its own: no VT; no input device)
	XDG_RUNTIME_DIR=$xdg weston --config="$xdg/weston.ini" --backend=drm-backend.so --drm-device="$card" \
		--seat=seat-demo --continue-without-input --debug --shell=desktop-shell.so --socket=wayland-demo \
		--log="$out/weston.log" >/dev/null 2>&1 &
	weston=$!
	i=0
	until [ -S "$xdg/wayland-demo" ]; do
		i=$((i + 1))
		[ $i -gt 600 ] && { echo "weston did not start" >>"$out/status.txt"; kill $weston; return; }
		sleep 0.1
	done
	sleep 2 # desktop-shell draws its background
	XDG_RUNTIME_DIR=$xdg WAYLAND_DISPLAY=wayland-demo "$build/tools/wayland/dmabroker-wayland" --session \
		--device vkms --stream live-gl --wait 120 >"$out/wayland.log" 2>&1 &
	wl=$!
	"$build/tools/gl/dmabroker-gl" --session --device vkms --input live --output live-gl --mode fifo \
		--wait 120 >"$out/gl.log" 2>&1 &
	gl=$!
	"$build/tools/dmabroker-camera" --session --stream live --format XR24 --width 320 --height 180 \
		--mode fifo --frames "$compositor_frames" --save-last "$out/live-last.ppm" >"$out/live-camera.log" 2>&1
	echo "live-camera exit $?" >>"$out/status.txt"
	wait $gl
	echo "gl exit $?" >>"$out/status.txt"
	i=0
	until grep -q "stream ended" "$out/wayland.log"; do
		i=$((i + 1))
		[ $i -gt 300 ] && { echo "wayland did not finish" >>"$out/status.txt"; break; }
		sleep 0.1
	done
	(cd "$xdg" && XDG_RUNTIME_DIR=$xdg WAYLAND_DISPLAY=wayland-demo weston-screenshooter >/dev/null 2>&1 &&
		mv wayland-screenshot-*.png "$out/weston.png") || echo "weston-screenshooter failed" >>"$out/status.txt"
	kill -INT $wl
	wait $wl
	echo "wayland exit $?" >>"$out/status.txt"
	kill -TERM $weston
	wait $weston
	rm -rf "$xdg"
}

if [ ! -x "$build/tools/wayland/dmabroker-wayland" ] || [ ! -x "$build/tools/gl/dmabroker-gl" ]; then
	echo "dmabroker-wayland or dmabroker-gl is not built (meson options wayland, gl)" >"$out/compositor-skipped.txt"
elif ! command -v weston >/dev/null || ! command -v weston-screenshooter >/dev/null; then
	echo "Weston is not installed in the test bed" >"$out/compositor-skipped.txt"
else
	compositor
fi
cat "$out/status.txt"
