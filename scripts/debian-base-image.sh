#!/usr/bin/env bash
# Makes a slim Debian 12 + Python 3.11 base image from Debian packages, for hosts that
# cannot pull from a container registry. Reuses the image when it already exists.
#   usage: scripts/debian-base-image.sh ENGINE IMAGE
set -euo pipefail
engine=${1:?usage: $0 ENGINE IMAGE}
image=${2:?usage: $0 ENGINE IMAGE}

if "$engine" image exists "$image" 2>/dev/null || "$engine" image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

# The mirror apt already uses on this host: the only one known to answer here.
mirror=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)
if [[ -z "$mirror" ]]; then
  mirror=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
echo "debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$rootfs" "$mirror" >/dev/null
# What a runtime image never needs: package lists and caches, docs, locales.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/man/*
tar -C "$rootfs" -c . | "$engine" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/usr/bin/python3"]' - "$image" >/dev/null
echo "base image $image created"
