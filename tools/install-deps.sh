#!/usr/bin/env bash
# Installs the Debian packages the build and tests need, when they are
# missing and we are root; otherwise names them and stops.
set -euo pipefail
packages=(cmake make gcc g++ pkg-config check libyaml-dev libopenblas-openmp-dev libpng-dev
          libsdl2-dev libsdl2-ttf-dev fonts-dejavu-core xvfb)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "sla2: missing Debian packages: ${missing[*]}" >&2
  echo "sla2: install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "sla2: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
