#!/usr/bin/env bash
# Runs the gateway with the embedded demo bot. Fetches ONNX Runtime and the Silero model
# from PyPI on first use. Extra arguments go to the gateway (e.g. --config PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup-runtime.sh
. scripts/cpu-flags.sh
cargo build --release -p bargein-gateway
exec ./target/release/bargein-gateway --config deploy/gateway.toml "$@"
