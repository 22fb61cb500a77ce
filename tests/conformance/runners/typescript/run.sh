#!/usr/bin/env bash
# TypeScript conformance runner: run.sh --server HOST:PORT --cases DIR
# Installs client/typescript's pinned dependencies (npm ci, first run only),
# builds it with tsc when its sources changed, then runs every case through
# @accelplan/client (run.js). Build output goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
pkg="$root/client/typescript"

bash "$root/scripts/setup/typescript.sh"
stamp="$pkg/dist/.build-stamp"
if [[ ! -f "$stamp" ]] || [[ -n "$(find "$pkg/src" "$pkg/tsconfig.json" "$pkg/package-lock.json" -newer "$stamp" -print -quit)" ]]; then
  echo "runner/typescript: building client/typescript (tsc)" >&2
  (cd "$pkg" && ./node_modules/.bin/tsc -p tsconfig.json 1>&2)
  touch "$stamp"
fi
exec node "$here/run.js" "$@"
