# earshot — the first two targets are all a fresh clone needs: `make dev` (coming) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_MODULES := node_modules/.package-lock.json

.PHONY: help dev bench install build test typecheck user-add validate keys images deploy undeploy services services-down mysql-proxy db-migrate

# Kubernetes CRD schemas for offline validation, kept in the repository (sources and licences in
# tools/k8s-schemas/README.md).
SCHEMAS ?= tools/k8s-schemas
KUBECONFORM_VERSION := v0.7.0
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
KUBECONFORM ?= $(or $(shell command -v kubeconform),$(ROOT)/.tools/kubeconform)
FUNCTIONS := $(patsubst functions/%/main.ts,%,$(wildcard functions/*/main.ts)) mysql-proxy
TAG ?= latest
NAMESPACE ?= earshot

help:
	@echo "make dev                           run earshot on this machine (nothing to install but Node)"
	@echo "make test                          typecheck and run every test"
	@echo "make bench                         measure against the baselines (about 10 minutes); table in .bench/results.json"
	@echo "make build                         bundle each function into dist/<name>.js"
	@echo "make user-add EMAIL=a@b.c [ROLE=admin]   add a user; the password is read from stdin"
	@echo "make install                       npm ci (the other targets run it when needed)"
	@echo "make validate                      check knative/ and eventing/: CRD schemas (kubeconform), then Knative's own admission code"
	@echo "make keys                          print new keys for production: a JWT key pair and a link-signing key"
	@echo "make images [REGISTRY=…]           one image per function: docker (pushed), or buildah on a base made from Debian packages"
	@echo "make deploy REGISTRY=… [NAMESPACE=earshot] [TAG=latest] [DRY_RUN=1]   install or update on Knative with kn"
	@echo "make undeploy [NAMESPACE=earshot]  remove it all (the Secret stays)"
	@echo "make services                      start the real servers the tests use under .services/: MariaDB, FerretDB (on PostgreSQL; on SQLite beside it for make bench), RabbitMQ + the broker data plane; and schemathesis"
	@echo "make mysql-proxy [MYSQL_URL=…]      serve PlanetScale's HTTP API in front of a MySQL (port 3900)"
	@echo "make db-migrate                    create the users and login_failures tables in USERS_DB_URL"

# npm ci when node_modules is missing or older than the lockfile.
$(NODE_MODULES): package-lock.json package.json
	npm ci
	@touch $@

install: $(NODE_MODULES)

build: $(NODE_MODULES)
	npx tsx tools/build.ts

# Rebuilt only when a source file or the lockfile is newer than the bundles.
dist/meta.json: $(NODE_MODULES) $(shell find functions shared tools mysql-proxy -name '*.ts' -not -name '*.test.ts') $(wildcard functions/web/page/*) package-lock.json
	npx tsx tools/build.ts

dev: dist/meta.json
	@npx tsx local/runtime.ts

bench: dist/meta.json
	@npx tsx bench/run.ts

typecheck: $(NODE_MODULES)
	npx tsc -p .

test: typecheck validate
	npx vitest run

user-add: $(NODE_MODULES)
	@test -n "$(EMAIL)" || { echo "usage: make user-add EMAIL=a@b.c [ROLE=admin] < password-file" >&2; exit 2; }
	@npx tsx functions/login/user-add.ts "$(EMAIL)" "$(or $(ROLE),user)"

.tools/kubeconform:
	GOBIN=$(ROOT)/.tools go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)

# Two layers: kubeconform against the newest published CRD schemas (Knative 1.22, kept in
# tools/k8s-schemas), then Knative's own admission code at the release we build against
# (tools/admission, v0.48 = Knative 1.21). Both come through Go; without Go, validate says so and
# goes on, except in CI. Tools are built in this checkout even when make runs elsewhere
# (make -f path/to/Makefile validate checks the manifests where it runs).
GO := $(shell command -v go)
ADMISSION := $(patsubst $(CURDIR)/%,%,$(ROOT)/.tools/admission)
ADMISSION_SKIPPED := make validate: Go is not installed, so Knative's admission checks were skipped (install Go to run them)

.tools/admission: tools/admission/go.mod tools/admission/go.sum $(wildcard tools/admission/*.go)
	@echo "building .tools/admission (Knative's admission code: the first build takes a few minutes)"
	cd tools/admission && GONOSUMDB=knative.dev GOFLAGS=-mod=mod go build -o $(CURDIR)/.tools/admission .
	@touch $@

validate:
ifneq ($(GO),)
	@$(MAKE) -s -C $(ROOT) .tools/admission $(if $(filter $(ROOT)/.tools/kubeconform,$(KUBECONFORM)),.tools/kubeconform)
endif
	@if command -v "$(KUBECONFORM)" >/dev/null; then \
	  $(KUBECONFORM) -strict -summary -skip ConfigMap,Secret \
	    -schema-location '$(SCHEMAS)/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json' knative/ eventing/; fi
ifneq ($(GO),)
	$(ADMISSION) knative/ eventing/
else
	@if [ -n "$$CI" ]; then echo "$(ADMISSION_SKIPPED)" >&2; exit 1; fi; echo "$(ADMISSION_SKIPPED)"
endif

keys: $(NODE_MODULES)
	@npx tsx tools/keys.ts

images: dist/meta.json
	@FUNCTIONS="$(FUNCTIONS)" REGISTRY="$(REGISTRY)" TAG="$(TAG)" bash tools/images.sh

deploy: $(NODE_MODULES)
	@REGISTRY="$(REGISTRY)" NAMESPACE="$(NAMESPACE)" TAG="$(TAG)" DRY_RUN="$(DRY_RUN)" MYSQL_PROXY="$(MYSQL_PROXY)" npx tsx tools/deploy.ts deploy

undeploy: $(NODE_MODULES)
	@NAMESPACE="$(NAMESPACE)" DRY_RUN="$(DRY_RUN)" MYSQL_PROXY="$(MYSQL_PROXY)" npx tsx tools/deploy.ts undeploy

services:
	@bash tools/services.sh up

services-down:
	@bash tools/services.sh down

mysql-proxy: $(NODE_MODULES)
	@MYSQL_URL="$(or $(MYSQL_URL),mysql://127.0.0.1:3307/earshot)" PORT="$(or $(PORT),3900)" npx tsx mysql-proxy/main.ts

db-migrate: $(NODE_MODULES)
	@npx tsx functions/login/db-migrate.ts
