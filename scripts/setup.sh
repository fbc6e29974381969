#!/usr/bin/env bash
# egovlab setup: idempotent, for Debian 12 as root. Used by the README, .ci/run and the Vagrantfile.
#   - installs the system packages the lab needs (only those missing),
#   - makes .venv from Debian's python3 with system site-packages (Mininet comes from Debian),
#   - installs egovlab with its pinned dependencies (again only when pyproject.toml changed),
#   - starts Open vSwitch when it is not running.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages. Later engines add theirs here, never in their own scripts.
PACKAGES=(
  python3-venv python3-pip
  mininet openvswitch-switch iputils-ping iproute2 iperf3 tcpdump  # emulation
  traceroute                                                       # NAPALM traceroute from a host
  graphviz                                                         # export graph
  vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients    # the failover suite in a Vagrant box (libvirt)
  dnsmasq-base iptables rsync                                      # ... its isolated network, synced folder
  openvswitch-testcontroller                                       # an external OpenFlow controller in tests
  postgresql nginx-light openssh-server openssh-client supervisor  # the services on the emulated hosts
  netcat-openbsd iputils-arping openssl                            # SSH via the bastions, address takeover, TLS
  debootstrap e2fsprogs qemu-system-x86 qemu-utils                 # the full-kernel VM tier
  chromium chromium-driver prometheus                              # web view test (headless), promtool for the alerts
)

log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $EUID -ne 0 ]]; then
    echo "setup: missing Debian packages (${missing[*]}); run as root to install them" >&2
    exit 2
  fi
  log "installing ${missing[*]}"
  apt-get update -qq
  # The daemons run only inside the lab's hosts: none may start on the machine itself.
  had_policy=0; [[ -e /usr/sbin/policy-rc.d ]] && had_policy=1
  ((had_policy)) || printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  ((had_policy)) || rm -f /usr/sbin/policy-rc.d
fi

# The venv sees Debian's Mininet (system site-packages) and our pinned pip packages.
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv from /usr/bin/python3"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.egovlab-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]] || ! .venv/bin/python -c "import egovlab.inventory" 2>/dev/null; then
  log "installing egovlab and its pinned dependencies into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import egovlab.inventory" # fail loudly if the install did not work
  echo "$want" > "$stamp"
fi

# Ansible's napalm.napalm collection comes from Ansible Galaxy, which these machines cannot reach;
# the same modules ship on PyPI as napalm-ansible (pinned in pyproject): lay them out as the
# collection under .venv (ANSIBLE_COLLECTIONS_PATH=.venv; see ansible/napalm-lab.yml).
collection=.venv/ansible_collections/napalm/napalm
if [[ ! -d $collection/plugins/modules ]]; then
  src=$(.venv/bin/python -c 'import napalm_ansible, os; print(os.path.dirname(napalm_ansible.__file__))')
  mkdir -p "$collection/plugins" "$collection/meta"
  cp -r "$src/modules" "$collection/plugins/modules"
  cp -r "$src/plugins/action" "$collection/plugins/action"
  printf 'requires_ansible: ">=2.9"\n' > "$collection/meta/runtime.yml"
fi

# Open vSwitch: the userspace datapath works without the kernel module.
if [[ $EUID -eq 0 ]] && ! ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
  log "starting Open vSwitch"
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null 2>&1 || true
  ovs-vsctl --timeout=10 show >/dev/null || { echo "setup: Open vSwitch did not start" >&2; exit 1; }
fi
log "ready"
