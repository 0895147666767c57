#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian 12 machine: installs the real peers
# (SIPp, baresip, sox, espeak-ng, ...), fetches ONNX Runtime + the Silero model from PyPI,
# checks formatting and lints, then runs unit tests and the end-to-end tests that drive the
# real gateway binary with real peers.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cpu-flags.sh
./scripts/install-test-deps.sh
./scripts/setup-runtime.sh
# The Python example gRPC bot (its e2e test runs it): grpcio + grpcio-tools into .cache/.
./examples/grpc-python-bot/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end tests start target/release/bargein-gateway (and the example bots,
# target/release/twilio-bot and target/release/grpc-rust-bot): build them first, then run all
# tests in the same (release) profile so dependencies compile once.
cargo build --release -p bargein-gateway -p twilio-bot -p grpc-rust-bot
cargo test --release --workspace -- --test-threads="${TEST_THREADS:-2}"
