#!/usr/bin/env bash
# Installs the real peers the end-to-end tests drive (Debian 12): SIPp (package sip-tester),
# baresip, espeak-ng + sox (test speech), asterisk-core-sounds-en-wav (human-recorded prompts for
# the barge-in evaluation corpus), tcpdump (captures when debugging), kamailio (load
# balancer recipes), openssl (a throw-away CA for the wss:// Twilio bot test). Idempotent and quiet: does nothing when every package is installed.
# Fails loudly (non-zero, apt's output on stderr) when apt cannot install them.
set -euo pipefail

PACKAGES=(sip-tester baresip espeak-ng sox libsox-fmt-all tcpdump kamailio asterisk-core-sounds-en-wav openssl)
# Binaries the tests run, checked after installing (a package may install but be broken).
BINARIES=(sipp baresip espeak-ng sox tcpdump kamailio openssl)

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: apt-get not found; install these by hand: ${missing[*]}" >&2
    exit 1
  fi
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo)
  fi
  echo "install-test-deps: installing ${missing[*]}" >&2
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  if ! "${SUDO[@]}" apt-get update -qq >"$log" 2>&1 \
     || ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
    cat "$log" >&2
    echo "install-test-deps: apt-get failed installing: ${missing[*]}" >&2
    exit 1
  fi
fi

# kamailio lives in /usr/sbin, which is not on every user's PATH.
for bin in "${BINARIES[@]}"; do
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ]; then
    echo "install-test-deps: '$bin' is still missing after installing ${PACKAGES[*]}" >&2
    exit 1
  fi
done
