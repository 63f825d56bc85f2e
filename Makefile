# The two commands of the README: `make test` (set-up + tests). The server arrives with the
# catalog service; until then `make setup` prepares the CLI.
.PHONY: setup test build native bench-accuracy clean

setup:
	scripts/setup.sh

test: setup
	node scripts/run-tests.mjs

build:
	npm run build --silent

native:
	npx node-gyp rebuild --directory native

bench-accuracy: setup
	node dist/bench/accuracy.js

clean:
	rm -rf dist native/build
