#!/usr/bin/env bash
# Debian packages icl needs to build, test and draw. Idempotent: installs only what is missing.
set -euo pipefail
PKGS=(build-essential cmake pkg-config lua5.4 liblua5.4-dev lua-busted lua-argparse lua-filesystem
      libopenblas-dev libyaml-dev libplplot-dev plplot-driver-cairo fonts-dejavu-core
      slurm-wlm munge) # the last two only for the Slurm sweep test (tests/slurm/)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "icl: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
