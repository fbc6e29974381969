#!/bin/bash
# PID 1 of egovlab's test VM (the image's boot stub hands over to this file, from the host's
# share): mount, copy the repository in from the host's read-only share, run the requested pytest
# selection (vm/run-suite.sh, as Vagrant's run does), hand back the results, power off. Whatever
# happens the VM powers off (the host kills it after its timeout anyway).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
mountpoint -q /proc || mount -t proc proc /proc; mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp; mount -o remount,rw /
mkdir -p /run/lock /var/run; echo 1 > /proc/sys/kernel/sysrq
off() { sync; echo "egovlab-vm: powering off"; echo o > /proc/sysrq-trigger; sleep 10; }
trap off EXIT
hostname egovlab-vm; ip link set lo up
for m in 9pnet_virtio 9p; do modprobe "$m" || echo "egovlab-vm: no module $m"; done
mkdir -p /mnt/repo /mnt/results
mountpoint -q /mnt/repo || mount -t 9p -o trans=virtio,version=9p2000.L,ro repo /mnt/repo || { echo "egovlab-vm: no repo share"; exit 1; }
mount -t 9p -o trans=virtio,version=9p2000.L results /mnt/results || { echo "egovlab-vm: no results share"; exit 1; }
echo "egovlab-vm: booted in $(cut -d' ' -f1 /proc/uptime) s"
mkdir -p /work/egovlab
tar -C /mnt/repo --exclude=./.venv --exclude=./.git --exclude=./out -cf - . | tar -C /work/egovlab -xf -
read -r -a ARGS < /mnt/results/pytest-args
/bin/bash /work/egovlab/vm/run-suite.sh /work/egovlab /mnt/results "${ARGS[@]}"
