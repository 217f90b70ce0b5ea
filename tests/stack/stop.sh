#!/usr/bin/env bash
# Stops what start.sh started (and only that).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
for name in dynamodb moto; do
  pidfile="$LOCAL/run/$name.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    say "stopped $name ($pid)"
  fi
  rm -f "$pidfile"
done
