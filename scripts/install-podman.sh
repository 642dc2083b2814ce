#!/usr/bin/env bash
# Installs Podman, the CNCF registry and skopeo (release tags in the registry) from Debian
# packages and applies the two settings these hosts need (see README "Containers"). Safe
# to run again.
set -euo pipefail

packages=(podman runc catatonit debootstrap docker-registry skopeo)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# crun fails on hybrid cgroup hosts and podman's default ulimits are refused there.
conf=/etc/containers/containers.conf
if ! grep -q '^runtime = "runc"' "$conf" 2>/dev/null; then
  mkdir -p "$(dirname "$conf")"
  cat >>"$conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
fi
podman info >/dev/null
echo "podman $(podman --version | awk '{print $3}') ready"
