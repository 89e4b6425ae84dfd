#!/usr/bin/env bash
# What netctl's lab and test suite need from Debian: iproute2 (ip, bridge), BIRD 2
# for the Calico labs, sshd/ssh/nc for SSH labs, iptables/nftables, ping, iperf3
# for lab bench, socat for the flannel udp lab and the Service responders, ethtool for offload
# checks, ipset and conntrack for the agents' rule sets (Felix ipsets, Service NAT entries).
# fish, to check the fish completion script netctl prints (netctl completion fish).
# chromium, the headless browser the test of `netctl matrix -o svg|html` renders the
# heat map in (a screenshot whose pixels are checked: failing squares marked), and
# fonts-liberation, the fonts it recommends (the installs here take no recommends).
# The Node runtime itself is not installed here: `npm ci` brings it (the `node`
# devDependency), whatever Node the machine ships.
set -euo pipefail
# Root (a container, CI) runs it directly; anyone else through sudo, asked only when needed.
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps.sh: needs root, and there is no sudo: run it as root" >&2
    exit 1
  fi
  exec sudo -- "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  iproute2 bird2 openssh-server openssh-client netcat-openbsd iptables nftables \
  iputils-ping iperf3 socat ethtool ipset conntrack procps ca-certificates fish chromium fonts-liberation >/dev/null
echo "install-deps.sh: Debian packages installed"
