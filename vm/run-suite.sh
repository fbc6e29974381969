#!/bin/bash
# The in-VM failover suite, run the same way whichever way the VM was booted (vm/guest-init.sh
# under qemu, `vagrant ssh` under Vagrant): load the modules this tier exists for, start Open
# vSwitch on the kernel datapath, run pytest in TREE, and leave the exit code, the JUnit XML, the
# log and the tests' figures in RESULTS.
#   run-suite.sh TREE RESULTS PYTEST_ARGS...
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
tree=$1 results=$2
shift 2
mkdir -p "$results"
for m in openvswitch sch_netem sch_tbf sch_htb; do modprobe "$m" || echo "egovlab-vm: no module $m"; done
ln -sfn /opt/egovlab/venv "$tree/.venv"
/usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null 2>&1 || echo "egovlab-vm: OVS did not start"
cd "$tree" || exit 1
echo "egovlab-vm: pytest $*"
EGOVLAB_VM=1 EGOVLAB_RESULTS="$results" .venv/bin/python -m pytest -p no:cacheprovider \
  --junitxml="$results/junit.xml" "$@" > "$results/pytest.log" 2>&1
echo $? > "$results/exit"
tail -n 5 "$results/pytest.log"
