#!/usr/bin/env bash
# Python conformance runner: uses the repository's .venv (make creates it).
set -euo pipefail
root="$(cd "$(dirname "$0")/../../../.." && pwd)"
exec "$root/.venv/bin/python" "$root/tests/conformance/runners/python/run.py" "$@"
