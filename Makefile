# The verbs people type. Everything runs in .venv, created and kept in sync on first use.
#   make run                 train a model if there is none, then serve http://127.0.0.1:8000
#   make test                lint, unit, integration and container tests (under 5 minutes)
#   make train DATA_DIR=...  train from a local copy of the UCI files (else SENTIMENT_DATA_DIR,
#                            else the UCI zip is downloaded)
#   make publish-model       push the current model to the registry, pin it as the champion
#   make retrain             a challenger on data + feedback; pinned only if better
#   make drift ENV=prod      ENV's drift report from its audit log
#   make build               build the champion's image once, push it, record its digest
#   make deploy ENV=test     run that digest as ENV's container (IMAGE=sha256:... for another)
#   make pipeline            dev gate -> build -> each environment of config/promotion.yaml
#   make promote TO=stage    move an image up one environment, if the one below passed it
#   make loadtest ENV=stage PROFILE=stress   a load-test profile against ENV (or URL=...)
#   make api-keys            the gates' API key where config asks for keys (stage, prod)
#   make workflows           run the workflows here with act (pull request, merge, release), checked (slow)

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_COMPILE := $(BIN)/pip-compile --quiet --strip-extras --generate-hashes --no-emit-index-url \
	--no-emit-find-links --no-emit-trusted-host

# What the verbs take from the command line. CI passes values that came from tags and
# records, so a value is data, never code: `quoted` reads it unexpanded ($(value)) and
# hands it to the shell as one single-quoted word, and the CLI then checks it.
ENV ?= dev
IMAGE ?=
MODEL ?=
TO ?=
UNTIL ?=
RELEASE ?=
DATA_DIR ?=
EVENT ?= pull_request
PROFILE ?= smoke
URL ?=
CONFIRM ?=
BASE_IMAGE ?= localhost/debian-python:bookworm
define newline


endef
# A line break would split a recipe: refused when the Makefile is read, before any target.
$(foreach variable,ENV IMAGE MODEL TO UNTIL RELEASE DATA_DIR PROFILE URL CONFIRM BASE_IMAGE,$(if \
	$(findstring $(newline),$(value $(variable))),$(error $(variable) holds a line break)))
quoted = '$(subst ','\'',$(value $(1)))'
flag = $(if $(value $(2)),$(1) $(call quoted,$(2)))
# make would expand them to export them to every recipe's environment: it never does.
unexport ENV IMAGE MODEL TO UNTIL RELEASE DATA_DIR PROFILE URL CONFIRM BASE_IMAGE REPO REVIEWERS DRY_RUN \
	EVENT SECRETS TAG

.PHONY: help setup train model run serve test unit integration container lint format config \
	alerts drift retrain models champion model-push model-pull publish-model lock clean build deploy undeploy status render base-image install-podman \
	smoke keys api-keys gate promote rollback sign history evidence pipeline state-pull state-push state-restore act workflows workflows-pull-request workflows-release policy github-setup \
	loadtest loadtest-ui

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## Create .venv with the locked dependencies

# The serving runtime (the root project), the API client (client/) and the release
# tooling (release/), all editable, on the locked dependencies. pip installs uv (pinned,
# hashed), uv the rest: the same hashes checked, in seconds instead of a minute (from
# uv's cache, shared by every checkout and CI job on the machine). Compiled to bytecode
# as pip does: the checks' sandbox mounts .venv read-only, and every import there would
# compile again.
UV = $(BIN)/uv pip install --quiet --system-certs --compile-bytecode --python $(BIN)/python
$(VENV)/.installed: pyproject.toml client/pyproject.toml release/pyproject.toml requirements/dev.lock requirements/bootstrap.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes \
		-r requirements/bootstrap.lock
	UV_PYTHON_DOWNLOADS=never $(UV) --require-hashes -r requirements/bootstrap.lock \
		-r requirements/dev.lock
	UV_PYTHON_DOWNLOADS=never $(UV) --no-deps -e . -e ./client -e ./release
	touch $@

train: setup ## Train, evaluate and gate a model; publish it if it passes
	$(BIN)/sentiment train --env $(call quoted,ENV) $(call flag,--data-dir,DATA_DIR)

model: setup ## Train only when the registry has no current model
	$(BIN)/sentiment train --env $(call quoted,ENV) --if-missing $(call flag,--data-dir,DATA_DIR)

run: model serve ## Train if needed, then serve the API

serve: setup ## Serve the current model under gunicorn with ENV's config
	$(BIN)/sentiment serve --env $(call quoted,ENV)

# The integration tests mostly wait (for servers, browsers, locust, back-offs): the unit
# tests run beside them, each phase's output kept in one piece. The container tests,
# whose gates measure throughput, run alone.
test: lint ## Lint, then unit and integration tests side by side, then container tests
	@$(MAKE) --no-print-directory -j2 --output-sync=target unit integration
	@$(MAKE) --no-print-directory container

unit: setup ## Unit tests (Flask test client, tiny fixture model)
	$(BIN)/pytest tests/unit

integration: setup ## Integration tests against real gunicorn processes
	$(BIN)/pytest tests/integration

container: setup ## Build the image once and run it (skipped when no container engine answers)
	$(BIN)/pytest tests/container

lint: setup ## ruff; import contracts; the policy against the checkout; actionlint; zizmor
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/sentiment policy check
	$(BIN)/actionlint -no-color -shellcheck $(BIN)/shellcheck
	$(BIN)/zizmor --offline --quiet --no-progress .github/

format: setup ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

config: setup ## Print the effective config of ENV
	$(BIN)/sentiment config --env $(call quoted,ENV)

models: setup ## List this machine's model versions and the model repository's
	$(BIN)/sentiment models list --env $(call quoted,ENV)
	$(BIN)/sentiment models list --remote

retrain: setup ## A challenger on data + feedback; pushed and pinned if better than the champion
	$(BIN)/sentiment retrain --publish $(call flag,--data-dir,DATA_DIR)

champion: setup ## The pinned champion as current model (trained while none is pinned)
	$(BIN)/sentiment models champion $(call flag,--data-dir,DATA_DIR)

model-push: setup ## Push the current model to the model repository (by digest)
	$(BIN)/sentiment models push

model-pull: setup ## Pull MODEL=sha256:... (default: the champion) as the current model, checked
	$(BIN)/sentiment models pull $(if $(value MODEL),$(call quoted,MODEL)) --current

publish-model: model ## Push the current model, pin it as champion (then commit the pin)
	$(BIN)/sentiment models push --pin

build: champion ## Build the champion's image once, push it, record its digest
	$(BIN)/sentiment build

deploy: setup ## Deploy the latest build (or IMAGE=sha256:...) to ENV (no gate: that is promote)
	$(BIN)/sentiment deploy $(call quoted,ENV) $(call flag,--image,IMAGE)

undeploy: setup ## Remove what runs as ENV
	$(BIN)/sentiment undeploy $(call quoted,ENV)

status: setup ## What runs in each environment
	$(BIN)/sentiment status

render: setup ## Print ENV's Kubernetes manifests, image pinned by digest, checked
	$(BIN)/sentiment render $(call quoted,ENV) $(call flag,--image,IMAGE)

smoke: setup ## Smoke-test what runs here as ENV (a pull request's image, in its own job)
	$(BIN)/sentiment smoke $(call quoted,ENV)

keys: setup ## A key pair per gate on this machine, to sign its evidence (kept if present)
	$(BIN)/sentiment keys create

gate: keys ## The first environment's gate (dev: quality, lint, unit tests); evidence
	$(BIN)/sentiment gate $(call quoted,ENV) $(call flag,--data-dir,DATA_DIR)

promote: keys ## Deploy IMAGE (default: latest build) to TO=<env> and run its gate
	$(BIN)/sentiment promote $(call flag,--to,TO) $(call flag,--image,IMAGE) \
		$(call flag,--release-tag,RELEASE) $(call flag,--data-dir,DATA_DIR)

rollback: keys ## Put ENV's previous release back, with the rollback checks
	$(BIN)/sentiment rollback $(call quoted,ENV)

sign: setup ## Sign what ENV's gates and promotions left unsigned, if it holds together
	$(BIN)/sentiment sign $(call quoted,ENV)

tag-release: setup ## Tag ENV's current release in the registry (when the promotion does not)
	$(BIN)/sentiment registry tag-release $(call quoted,ENV)

history: setup ## ENV's promotion ledger
	$(BIN)/sentiment history $(call quoted,ENV)

evidence: setup ## Gate evidence records (IMAGE=sha256:... for one image)
	$(BIN)/sentiment evidence $(call flag,--image,IMAGE)

api-keys: setup ## The gates' API key for each environment that asks for keys (kept if valid)
	$(BIN)/sentiment api-keys gate

pipeline: keys api-keys ## Champion, dev gate, build, promote up to UNTIL (default: all)
	$(BIN)/sentiment pipeline $(call flag,--until,UNTIL) $(call flag,--release-tag,RELEASE) \
		$(call flag,--data-dir,DATA_DIR)

state-pull: setup ## Merge the delivery-state branch's evidence and ledgers into .delivery/
	$(BIN)/sentiment state pull

state-push: setup ## Commit .delivery/'s evidence and ledgers to delivery-state and push it
	$(BIN)/sentiment state push

state-restore: setup ## Put back the evidence and ledger lines delivery-state holds and .delivery/ lost
	$(BIN)/sentiment state restore

# act runs a workflow's jobs on this machine (`sentiment github act`, release/github/act.py):
# EVENT=pull_request (default), push (to main: ci.yml) or tag (TAG=v...: release.yml);
# SECRETS=file.yaml gives each job its environment's secrets, as GitHub does.
# The two runs mostly wait on one job at a time each: side by side, each output in one piece.
workflows: setup ## Run the workflows with act and check what their jobs did (minutes)
	@$(MAKE) --no-print-directory -j2 --output-sync=target workflows-pull-request \
		workflows-release

workflows-pull-request: setup
	$(BIN)/pytest tests/workflows/test_pull_request_with_act.py

workflows-release: setup
	$(BIN)/pytest tests/workflows/test_main_and_release_with_act.py

act: setup ## Run EVENT's workflow locally with act, as GitHub would (SECRETS=..., TAG=...)
	$(BIN)/sentiment github act $(call quoted,EVENT) $(call flag,--tag,TAG) \
		$(call flag,--secrets,SECRETS)

# ENV's deployment here; URL=... any service speaking this API; both: ENV at that address.
# A customer-facing environment (prod) runs only with CONFIRM=<its name>.
LOADTEST_ENV = $(if $(and $(value URL),$(filter file default,$(origin ENV))),,--env $(call quoted,ENV))
LOADTEST_ARGS = $(call quoted,PROFILE) $(LOADTEST_ENV) $(call flag,--url,URL) \
	$(call flag,--confirm,CONFIRM) $(call flag,--data-dir,DATA_DIR)
loadtest: setup ## PROFILE=smoke|average|stress|spike|soak against ENV (or URL=...), compared
	$(BIN)/sentiment loadtest $(LOADTEST_ARGS)

loadtest-ui: setup ## The same with locust's web UI on http://127.0.0.1:8089, to watch it live
	$(BIN)/sentiment loadtest $(LOADTEST_ARGS) --ui

drift: setup ## ENV's drift report from its audit log (table, PNG charts, HTML page)
	$(BIN)/sentiment drift $(call quoted,ENV)

alerts: setup ## promtool: check the alert rules, run their tests, parse the dashboard's queries
	$(BIN)/sentiment alerts

bench: setup ## Benchmark /predict/ against the stack's true floor and the lecture's app (wrk; minutes)
	$(BIN)/sentiment bench $(call flag,--data-dir,DATA_DIR)

install-podman: ## Install Podman and the local registry (Debian, root)
	bash scripts/install-podman.sh

pin-base-image: setup ## Pin config/delivery.yaml's base image to the digest its tag names now
	$(BIN)/sentiment base-image pin

base-image: ## Make BASE_IMAGE from Debian packages (hosts that cannot pull images)
	bash scripts/debian-base-image.sh "$${DELIVERY_ENGINE:-podman}" $(call quoted,BASE_IMAGE)

policy: setup ## The environments in promotion order, with their gates
	$(BIN)/sentiment policy show

github-setup: setup ## GitHub environments, rules, variables (gh); DRY_RUN=1 prints the calls
	$(BIN)/sentiment github setup $(if $(value DRY_RUN),--dry-run) $(call flag,--repo,REPO) \
		$(call flag,--reviewers,REVIEWERS)

# The release tooling depends on the runtime and the client, which no index has: their
# wheels stand in.
lock: setup ## Re-pin requirements/*.lock from the two pyproject.toml files
	$(PIP_COMPILE) --upgrade --extra scikit-learn -o requirements/runtime-scikit-learn.lock \
		pyproject.toml
	$(PIP_COMPILE) -c requirements/runtime-scikit-learn.lock -o requirements/runtime.lock \
		pyproject.toml
	rm -rf build/lock-wheels && $(BIN)/pip wheel --quiet --no-deps -w build/lock-wheels . ./client
	$(PIP_COMPILE) --upgrade --extra dev -c requirements/runtime-scikit-learn.lock \
		--find-links build/lock-wheels --unsafe-package sentiment-service \
		--unsafe-package sentiment-client \
		--unsafe-package pip --unsafe-package setuptools \
		-o requirements/dev.lock release/pyproject.toml
	rm -rf build/lock-wheels
	$(PIP_COMPILE) --upgrade --allow-unsafe -o requirements/bootstrap.lock requirements/bootstrap.in

clean: ## Remove .venv and caches (keeps models/ and the data cache)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .schemathesis build
	find . -name "*.egg-info" -prune -exec rm -rf {} +
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
