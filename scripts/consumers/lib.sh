#!/usr/bin/env bash
# Shared by scripts/consumers/*: sourced, not run.
#
# Each consumer test builds one SDK the way its registry would ship it, installs
# that artefact into a scratch project OUTSIDE the repository (a fresh mktemp
# directory), and runs the complete program from the SDK's README against a
# live server. `example FILE README` prints the fenced code block that follows
# the line `<!-- example: FILE -->` in README, so the README and the test can
# never drift apart.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="$(tr -d '[:space:]' < "$root/VERSION")"

# Scratch directory outside the checkout, removed on exit (unless KEEP_SCRATCH=1).
scratch="$(mktemp -d "${TMPDIR:-/tmp}/accelplan-consumer.XXXXXX")"
server_pid=""
_consumer_cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [[ "${KEEP_SCRATCH:-0}" == 1 ]] || rm -rf "$scratch"
}
trap _consumer_cleanup EXIT

# example FILE README: the code block after `<!-- example: FILE -->`.
example() {
  awk -v tag="<!-- example: $1 -->" '
    $0 == tag { armed = 1; next }
    armed && /^```/ { if (inblock) exit; inblock = 1; next }
    inblock { print }
  ' "$2" | { out="$(cat)"; [[ -n "$out" ]] || { echo "no example '$1' in $2" >&2; return 1; }; printf '%s\n' "$out"; }
}

# ensure_server: use $ACCELPLAN_SERVER if set, else start the checkout's server on a free port.
ensure_server() {
  [[ -n "${ACCELPLAN_SERVER:-}" ]] && return 0
  local log="$scratch/server.out" port=""
  "$root/.venv/bin/accelplan" serve --port 0 --log-level WARNING >"$log" 2>"$scratch/server.err" &
  server_pid=$!
  for _ in $(seq 100); do
    port="$(sed -n 's/.*listening on [^:]*:\([0-9]*\).*/\1/p' "$log")"
    [[ -n "$port" ]] && break
    sleep 0.1
  done
  [[ -n "$port" ]] || { echo "consumer: server did not start" >&2; cat "$scratch/server.err" >&2; return 1; }
  export ACCELPLAN_SERVER="localhost:$port"
}

# check_output LANG FILE: the README programs print "plan: <strategy> over <n> device(s)".
check_output() {
  if grep -q '^plan: SHARDING_STRATEGY_[A-Z_]* over [0-9]* device(s)' "$2"; then
    echo "consumer $1: ok ($(grep '^plan:' "$2"))"
  else
    echo "consumer $1: the README program did not print a plan" >&2; cat "$2" >&2; return 1
  fi
}
