#!/bin/bash
# Install the Debian packages kup builds and tests with; touches apt only
# when something is missing.
set -euo pipefail
pkgs=(build-essential gcc make pkg-config libprotobuf-c-dev protobuf-c-compiler
      libcap-dev libkmod-dev libblkid-dev libisal-dev libxxhash-dev kexec-tools libcmocka-dev
      clang libclang-rt-14-dev python3 memcached iproute2 socat procps psmisc
      util-linux e2fsprogs bsdutils libnftables-dev nftables libmnl-dev libjansson-dev
      openvpn openssh-server openssh-client tmux screen postgresql redis-server redis-tools
      dnsmasq haproxy mariadb-server iputils-ping netcat-openbsd expect
      debhelper dpkg-dev fakeroot lintian blhc devscripts git
      bash-completion jq groff-base)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
