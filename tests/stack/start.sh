#!/usr/bin/env bash
# Starts the local stack in the background, idempotently:
#   DynamoDB Local on $ANALYTICS_DDB_PORT (default 8000),
#   moto's server (EventBridge, SQS) on $ANALYTICS_BUS_PORT (default 5050).
# With --persist DynamoDB Local keeps its data in .local/ddb (make dev);
# otherwise it runs in memory (tests). A service already listening is left alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
persist=0
[ "${1:-}" = "--persist" ] && persist=1

"$ROOT/tests/stack/install.sh"
mkdir -p "$LOCAL/run" "$LOCAL/log"
exec 9>"$LOCAL/run/start.lock"
flock 9

wait_port() { # PORT NAME LOG
  for _ in $(seq 1 150); do port_open "$1" && return 0; sleep 0.2; done
  tail -n 20 "$3" >&2 || true
  die "$2 did not start on port $1 (log: $3)"
}

if port_open "$DDB_PORT"; then
  say "DynamoDB Local already listening on $DDB_PORT"
else
  dir="$(ddb_dir)"
  args=(-inMemory)
  if [ $persist = 1 ]; then mkdir -p "$LOCAL/ddb"; args=(-sharedDb -dbPath "$LOCAL/ddb"); fi
  say "starting DynamoDB Local on $DDB_PORT"
  nohup java -Xmx1g -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
    "${args[@]}" -port "$DDB_PORT" >"$LOCAL/log/dynamodb.log" 2>&1 9>&- &
  echo $! >"$LOCAL/run/dynamodb.pid"
  wait_port "$DDB_PORT" "DynamoDB Local" "$LOCAL/log/dynamodb.log"
fi

if port_open "$BUS_PORT"; then
  say "moto server already listening on $BUS_PORT"
else
  say "starting moto server (EventBridge, SQS) on $BUS_PORT"
  nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$BUS_PORT" >"$LOCAL/log/moto.log" 2>&1 9>&- &
  echo $! >"$LOCAL/run/moto.pid"
  wait_port "$BUS_PORT" "moto server" "$LOCAL/log/moto.log"
fi
say "stack up: AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_EVENTBRIDGE=$AWS_ENDPOINT_URL_EVENTBRIDGE"
