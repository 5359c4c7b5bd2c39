#!/usr/bin/env bash
# Installs the Debian packages hubgate's end-to-end tests drive: nginx and caddy
# (forward-auth in front of a model server), dnsmasq-base (a DNS server for domain verification,
# without the system service) and SimpleSAMLphp with the PHP extensions it needs (a
# real SAML 2.0 IdP that tests/e2e/idp.py runs under `php -S`) and chromium (the
# browser tests/browser/ drives through Playwright: Playwright cannot download its
# own browser here, so it runs Debian's /usr/bin/chromium), rsyslog (a syslog server
# that audit streaming delivers to, run unprivileged by the test) and wrk (the load
# generator bench/access.py measures forward-auth with). Without root or apt,
# it says so and the tests that need these programs are skipped with a reason.
set -euo pipefail

packages=(nginx-light caddy dnsmasq-base simplesamlphp php-cli php-xml php-curl php-mbstring php-intl chromium rsyslog wrk)
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
# The packages may start a system nginx or caddy on port 80, and simplesamlphp may pull in
# apache2 or php-fpm; the tests run their own servers, so stop whatever started.
if command -v service >/dev/null; then
  for service in nginx caddy apache2 $(cd /etc/init.d 2>/dev/null && ls -d php*-fpm 2>/dev/null); do
    service "$service" stop >/dev/null 2>&1 || true
  done
fi
echo "install-system-deps: installed ${missing[*]}"
