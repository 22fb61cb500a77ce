#!/usr/bin/env bash
# Go conformance runner: run.sh --server HOST:PORT --cases DIR
# Builds the runner (against client/go through a replace directive) into bin/,
# then runs every case through the Go SDK. Build output goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v go >/dev/null 2>&1; then
  echo "go conformance runner: the go command is needed" >&2
  exit 2
fi
(cd "$here" && go build -o bin/conformance-go .) >&2
exec "$here/bin/conformance-go" "$@"
