#!/usr/bin/env bash
# Conformance runner for the Rust SDK (client/rust):
#   tests/conformance/runners/rust/run.sh --server HOST:PORT --cases DIR
# Builds the runner (debug profile: quickest cold build) with build output on stderr, then runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cargo build --manifest-path "$here/Cargo.toml" --locked --quiet >&2
exec "$here/target/debug/accelplan-conformance" "$@"
