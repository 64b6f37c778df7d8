# earshot — the first two targets are all a fresh clone needs: `make dev` (coming) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_MODULES := node_modules/.package-lock.json

.PHONY: help install build test typecheck user-add

help:
	@echo "make test                          typecheck and run every test"
	@echo "make build                         bundle each function into dist/<name>.js"
	@echo "make user-add EMAIL=a@b.c [ROLE=admin]   add a user; the password is read from stdin"
	@echo "make install                       npm ci (the other targets run it when needed)"

# npm ci when node_modules is missing or older than the lockfile.
$(NODE_MODULES): package-lock.json package.json
	npm ci
	@touch $@

install: $(NODE_MODULES)

build: $(NODE_MODULES)
	npx tsx tools/build.ts

typecheck: $(NODE_MODULES)
	npx tsc -p .

test: typecheck
	npx vitest run

user-add: $(NODE_MODULES)
	@test -n "$(EMAIL)" || { echo "usage: make user-add EMAIL=a@b.c [ROLE=admin] < password-file" >&2; exit 2; }
	@npx tsx functions/login/user-add.ts "$(EMAIL)" "$(or $(ROLE),user)"
