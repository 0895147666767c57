#!/usr/bin/env bash
# Installs the Python example bot's dependencies (grpcio, grpcio-tools from PyPI) into a
# virtual environment under .cache/grpc-python-bot/venv. Idempotent. On a fresh Debian 12
# machine it installs python3-venv with apt first (when run as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.cache/grpc-python-bot/venv
REQ=examples/grpc-python-bot/requirements.txt
STAMP="$VENV/.installed-$(sha256sum "$REQ" | cut -c1-16)"
if [ -f "$STAMP" ] && "$VENV/bin/python" -c "import grpc, grpc_tools" 2>/dev/null; then
  exit 0
fi
if ! python3 -c "import venv, ensurepip" 2>/dev/null; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "grpc-python-bot: installing python3-venv" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  else
    echo "grpc-python-bot: python3 with venv is required (sudo apt-get install python3-venv)" >&2
    exit 1
  fi
fi
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: -r "$REQ"
touch "$STAMP"
echo "grpc-python-bot: ready in $VENV" >&2
