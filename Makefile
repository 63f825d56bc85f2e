# The two commands a user needs: `make serve` (set-up, then the server on embedded defaults) and
# `make test` (set-up, then every test).
.PHONY: setup serve test lint build native fuzz bench-accuracy bench-search bench-stream docker-up docker-down clean

POSTGRES_MODE ?= docker
QDRANT_MODE ?= docker
FUZZ_SECONDS ?= 60

setup:
	scripts/setup.sh

serve: setup
	node dist/src/cli/main.js serve

test:
	npm test --silent

# The formatter, the linter and the layering of src/ (no import cycle between its folders).
lint:
	npm run lint --silent

build:
	npm run build --silent

native:
	npm run install --silent

# The fuzzer of the listening protocol and the REST uploads against a real server, for
# FUZZ_SECONDS; FUZZ_SEED repeats a run (each run prints its seed).
fuzz: build
	node dist/tools/fuzz.js --seconds $(FUZZ_SECONDS) $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

bench-accuracy: setup
	node dist/bench/accuracy.js

bench-search: setup
	node dist/bench/search.js

bench-stream: setup
	node dist/bench/stream.js

# Services in Docker for those who want them (needs a Docker engine; nothing here requires it).
# The app then needs DATABASE_URL=postgres://audio_ident:audio_ident@localhost:5432/audio_ident.
docker-up:
	@if [ "$(POSTGRES_MODE)" = "docker" ]; then \
		docker compose --profile postgres up -d --wait && echo "PostgreSQL ready."; \
	else echo "POSTGRES_MODE=$(POSTGRES_MODE): not starting PostgreSQL."; fi
	@if [ "$(QDRANT_MODE)" = "docker" ]; then \
		docker compose --profile qdrant up -d --wait && echo "Qdrant ready."; \
	else echo "QDRANT_MODE=$(QDRANT_MODE): not starting Qdrant."; fi

docker-down:
	docker compose --profile postgres --profile qdrant down

clean:
	rm -rf dist native/build
