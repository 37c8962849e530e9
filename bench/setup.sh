#!/usr/bin/env bash
# Installs what the benchmark needs from Debian: nginx (the near-zero-CPU
# upstream) and wrk (the load generator). Idempotent and quiet: does nothing
# when both are already on PATH.
set -euo pipefail

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v wrk   >/dev/null 2>&1 || need+=(wrk)
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "bench/setup.sh: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# The package's postinst would start a system nginx on :80; the benchmark runs
# its own instance, so forbid service starts during the install (only if no
# policy is already in place, and remove ours afterwards).
policy=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    ours=1
fi
cleanup() { [ "$ours" -eq 1 ] && $SUDO rm -f "$policy"; return 0; }
trap cleanup EXIT

# Refresh the package lists only when they are missing (or when the install fails).
if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { echo "bench/setup.sh: nginx not found after install" >&2; exit 1; }
command -v wrk   >/dev/null 2>&1 || { echo "bench/setup.sh: wrk not found after install" >&2; exit 1; }
