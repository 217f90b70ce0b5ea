# Local development and CI entry points. Every target installs what it
# needs into .local/ first (tests/stack/install.sh), idempotently.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export PATH := $(CURDIR)/.local/venv/bin:$(PATH)
export AWS_REGION ?= us-east-1
export AWS_ACCESS_KEY_ID ?= local
export AWS_SECRET_ACCESS_KEY ?= local
export AWS_ENDPOINT_URL_DYNAMODB ?= http://127.0.0.1:$(or $(ANALYTICS_DDB_PORT),8000)
export AWS_ENDPOINT_URL_EVENTBRIDGE ?= http://127.0.0.1:$(or $(ANALYTICS_BUS_PORT),5050)
export ANALYTICS_TABLE ?= analytics
export ANALYTICS_LOCAL_JWT_SECRET ?= local-dev-secret
export ANALYTICS_LOCAL_JWT_ISSUER ?= analytics-local
export RUST_LOG ?= info
SAM_ARCH := $(or $(ARCH),arm64)

.PHONY: help dev stack seed token invoke test proptest lint bench sam-build stop clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

dev: stack seed ## run everything locally: stack, table, demo data, API on http://localhost:9000
	@echo "API: http://localhost:9000/api/v1/analytics/...  token: make token"
	cargo lambda watch --invoke-address 127.0.0.1 --invoke-port 9000

stack: ## install and start DynamoDB Local and moto (persistent data in .local/ddb)
	tests/stack/start.sh --persist

seed: ## create the table and load demo events (idempotent)
	cargo run -q -p analytics-tools --bin seed

token: ## print a local admin token that may also ingest (ARGS="--sub u-1 --role manager" to change)
	@cargo run -q -p analytics-tools --bin token -- $(or $(ARGS),--sub demo-admin --role admin --scope analytics/ingest)

invoke: ## invoke a function with a payload while make dev runs (FN=ingest EVENT=events/ingest-batch.json)
	cargo lambda invoke $(or $(FN),ingest) --invoke-address 127.0.0.1 --invoke-port 9000 --data-file $(or $(EVENT),events/ingest-batch.json)

test: ## run every test: lint, then unit and integration tests (starts the in-memory stack if needed)
	tests/stack/start.sh
	$(MAKE) --no-print-directory lint
	cargo test --workspace --all-targets --no-fail-fast
	cd clients/python && python -m pytest -q -p no:cacheprovider

proptest: ## the property tests a hundred times longer than in make test (minutes; starts the in-memory stack if needed)
	tests/stack/start.sh
	ANALYTICS_PROPTEST_SCALE=$(or $(SCALE),100) cargo test -p integration-tests --test properties --release -- --nocapture

lint: ## formatting, clippy (warnings are errors), cfn-lint on the SAM template, openapi-spec-validator on the API document
	tests/stack/install.sh
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cfn-lint infra/template.yaml
	openapi-spec-validator infra/openapi.yaml

bench: ## the benchmarks of BENCHMARKS.md (those on DynamoDB Local start the stack if needed)
	cargo bench -p analytics-shared --bench ingest_pipeline
	cargo bench -p analytics-client --bench client
	cargo bench -p integration-tests --bench peak_memory
	cargo bench -p integration-tests --bench write_strategies
	cargo bench -p integration-tests --bench ingest_cost
	cargo bench -p integration-tests --bench period_reads
	cargo bench -p integration-tests --bench explorer_reads
	cargo bench -p integration-tests --bench jobs
	cargo lambda build --release --x86-64 --bin ingest --bin query --bin rollup --bin health --bin cleanup --bin weekly-report
	cargo bench -p integration-tests --bench cold_start

sam-build: ## sam build from the root, for arm64 as the template deploys (ARCH=x86_64 for the other)
	tests/stack/install.sh --with-sam
	@if [ "$(SAM_ARCH)" = arm64 ] && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then \
	  rustup target add aarch64-unknown-linux-gnu; fi
	SAM_CLI_TELEMETRY=0 .local/sam/bin/sam build --parameter-overrides Architecture=$(SAM_ARCH)
	@ls -l .aws-sam/build/*/bootstrap
	@! command -v file >/dev/null || file .aws-sam/build/IngestFunction/bootstrap

stop: ## stop the local stack
	tests/stack/stop.sh

clean: stop ## stop the stack and remove local data
	rm -rf .local/ddb .local/log .local/run
