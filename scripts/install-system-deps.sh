#!/usr/bin/env bash
# Installs the Debian packages hubgate's end-to-end tests drive: nginx (forward-auth
# in front of a model server). Without root or apt, it says so and the tests that need
# these programs are skipped with a reason.
set -euo pipefail

packages=(nginx-light)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-system-deps: not root or no apt-get; missing: ${missing[*]} (their end-to-end tests will be skipped)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package starts a system nginx on port 80; the tests run their own.
(command -v service >/dev/null && service nginx stop >/dev/null 2>&1) || true
echo "install-system-deps: installed ${missing[*]}"
