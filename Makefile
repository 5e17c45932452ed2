# agent-authz: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_MODULES := node_modules/.package-lock.json

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

install: $(NODE_MODULES) ## Install npm dependencies (npm ci)

build: install ## Compile TypeScript to dist/
	npx tsc -p tsconfig.json

run: build ## Run the server on the embedded registry (examples/registry.yaml)
	AGENT_AUTHZ_REGISTRY_FILE=$${AGENT_AUTHZ_REGISTRY_FILE:-examples/registry.yaml} \
	AGENT_AUTHZ_SPIFFE_TRUST_DOMAINS=$${AGENT_AUTHZ_SPIFFE_TRUST_DOMAINS:-example.org} \
	node --no-parallel-scavenge --no-parallel-marking --no-concurrent-marking --no-cppheap-concurrent-marking --no-parallel-compaction --no-parallel-pointer-update --initial-old-space-size=96 --no-allocation-site-pretenuring dist/src/cli/main.js serve

lint: install ## Type-check, lint and check formatting
	npx tsc -p tsconfig.test.json
	npx eslint .
	npx prettier --check .

format: install ## Rewrite files with prettier
	npx prettier --write .

test: install ## Run lint and the whole test suite (installs redis, Go, gRPC and nghttp2 tools if missing)
	@bash scripts/ensure-test-deps.sh
	$(MAKE) --no-print-directory lint
	@mkdir -p .tmp
	npx vitest run --reporter=default --reporter=json --outputFile=.tmp/vitest.json
	@node -e "const r=require('./.tmp/vitest.json');console.log(r.numPassedTests+' passed, '+r.numFailedTests+' failed')"

bench: build ## Run the benchmarks against a same-run baseline (see README, Performance)
	bash bench/run.sh

floods: build ## Flood the gRPC listener from one connection per flood and print what each cost (docs/transport.md)
	taskset -c $${BENCH_LOAD_CPU:-1} node --import tsx bench/floods.ts

clean: ## Remove build output
	rm -rf dist coverage

.PHONY: help install build run lint format test bench floods clean
