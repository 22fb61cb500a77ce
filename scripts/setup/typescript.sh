#!/usr/bin/env bash
# TypeScript: installs client/typescript's pinned npm dependencies (ts-proto,
# typescript, @grpc/grpc-js, @bufbuild/protobuf) from package-lock.json.
# Idempotent: skips `npm ci` when node_modules already matches the lock file.
# Needs Node >= 18 and npm on PATH. Progress goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pkg="$root/client/typescript"
stamp="$pkg/node_modules/.accelplan-lock"

if ! command -v npm >/dev/null 2>&1; then
  echo "scripts/setup/typescript.sh: npm not found (install Node.js >= 18)" >&2
  exit 1
fi
if [[ -f "$stamp" ]] && cmp -s "$pkg/package-lock.json" "$stamp"; then
  exit 0
fi
echo "setup/typescript: npm ci in client/typescript" >&2
(cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error 1>&2)
cp "$pkg/package-lock.json" "$stamp"
