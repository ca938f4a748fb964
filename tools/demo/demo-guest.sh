#!/bin/sh
# The demo, inside the test bed (tests/vm/vm-run), under a session-bus
# dmabrokerd (tests/common/with-daemon.py):
#
#   vivid --(V4L2 DMABUF)--> dmabroker-camera --stream "demo"--> dmabroker-display on vkms
#                                                           \--> dmabroker-display on virtio-gpu
#
# usage: demo-guest.sh BUILD_DIR FRAMES
# Writes into $DMABROKER_VM_ARTIFACTS: the logs, camera-last.ppm (the last
# captured frame), vkms-writeback.ppm (vkms's output read back through its
# writeback connector), virtio-gpu.png (qemu's screendump of virtio-gpu,
# asked for from inside the guest), streams.txt (dmabrokerctl streams).
set -u
build=$1
frames=$2
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
cat "$out/status.txt"
