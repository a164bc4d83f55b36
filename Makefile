# The two commands a fresh machine needs:  make run  (server with demo data)  and  make test.
# Python 3.12 is required: .python-version selects pyenv's 3.12.1, so python3 here is 3.12.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# make run PORT=8001 when 8000 is taken.
PORT ?= 8000
DEMO_ENV := DJANGO_DEBUG=1 DJANGO_SUPERUSER_EMAIL=admin@techbirdsfly.local DJANGO_SUPERUSER_PASSWORD=admin-demo-password

.PHONY: install run test check bench lint format clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -c 'import sys; sys.exit("Python 3.12+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 12) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Development settings that manage.py reads in any shell (techbirdsfly/env.py); written once, git-ignored.
.env:
	@umask 077; printf '%s\n' \
		'# Development settings written by make install: debug mode and a key of this checkout.' \
		'# Git-ignored: never commit it. A variable set in the environment wins over this file.' \
		'DJANGO_DEBUG=1' \
		"DJANGO_SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@
	@echo "wrote .env (DJANGO_DEBUG=1 and a new DJANGO_SECRET_KEY, for development)"

install: $(BIN)/.installed .env

# Stops at once, saying why, when the server cannot listen on PORT or when a generator already runs on
# the same SQLite file (another make run: SQLite has no row locks); make then exits with 2. Ctrl-C
# stops the server and the generator and ends make with the usual 130.
RUN_DIR := .run
run: install
	@$(BIN)/python -c 'import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", $(PORT)))' 2>/dev/null \
		|| { echo "make run: 127.0.0.1:$(PORT) is in use (or not a port); free it or choose another: make run PORT=8001" >&2; exit 1; }
	@why=$$($(DEMO_ENV) $(BIN)/python manage.py run_generator --check 2>&1) \
		|| { echo "make run: $${why#CommandError: }" >&2; exit 1; }
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py createsuperuser --noinput 2>/dev/null || true
	# Demo data (a second run finds it and does nothing): demo users, accounts, usage, invoices, images, preferences.
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo --users 100 --accounts 250 --usage 50000 \
		--large-accounts 1 --large-account-usage 20000 --images 40 --preferences 50
	# The server's cache counters, where cache_stats can read them (PROMETHEUS_MULTIPROC_DIR=$(RUN_DIR)/metrics-$(PORT)).
	rm -rf $(RUN_DIR)/metrics-$(PORT) && mkdir -p $(RUN_DIR)/metrics-$(PORT)
	# A generator worker beside the server (warnings only, so the server's lines stay readable), and the
	# URLs and logins once the server listens; both stopped with it (on exit and on Ctrl-C).
	$(DEMO_ENV) DJANGO_LOG_LEVEL=WARNING $(BIN)/python manage.py run_generator & GEN=$$!; \
	$(DEMO_ENV) $(BIN)/python manage.py dev_banner --port $(PORT) & BANNER=$$!; \
	trap 'kill $$GEN $$BANNER 2>/dev/null' EXIT INT TERM; \
	$(DEMO_ENV) PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/$(RUN_DIR)/metrics-$(PORT) $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

# The whole suite (or TESTS=billing_app ...) on PostgreSQL: DATABASE_URL, else the local server as CI
# has it. It first names anything missing (techbirdsfly/prerequisites.py): nothing is skipped for it.
TEST_DATABASE_URL := postgres://postgres@127.0.0.1:5432/techbirdsfly
test: export DATABASE_URL ?= $(TEST_DATABASE_URL)
test: install
	@$(BIN)/python -m techbirdsfly.prerequisites $(if $(TESTS),,--full)
	DJANGO_DEBUG=1 $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	DJANGO_DEBUG=1 $(BIN)/python manage.py test --noinput $(TESTS)

# The fast lane (or TESTS=...): every test that needs no server process of its own beyond the private
# Redis and the database. Left to make test: the tests tagged live (they start gunicorn or another app
# server process), infra (nginx, Sentinel, a Cluster, PgBouncer, compose) and browser (Chromium).
FAST_LANE := --exclude-tag live --exclude-tag infra --exclude-tag browser
check: export DATABASE_URL ?= $(TEST_DATABASE_URL)
check: install
	@$(BIN)/python -m techbirdsfly.prerequisites
	DJANGO_DEBUG=1 $(BIN)/python manage.py collectstatic --noinput --verbosity 0
	DJANGO_DEBUG=1 $(BIN)/python manage.py test --noinput $(FAST_LANE) $(TESTS)

# The benchmark (bench/run.py): seeds or reuses PostgreSQL database tbf_bench (BENCH_DATABASE_URL),
# starts its own Redis and gunicorn servers, needs wrk (apt-get install -y wrk); writes bench/RESULTS.md.
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles
