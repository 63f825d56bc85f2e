#!/usr/bin/env bash
# Installs what audio-ident needs on a fresh Debian/Ubuntu machine: ffmpeg (decoding), sox (the
# shared degrade.sh used by tests and benches), PostgreSQL server binaries (tests), the npm
# packages, the native addon (built from source by node-gyp during npm install), the TypeScript
# build and the web client (Vite, into dist/web). With --tests also Debian's chromium, the real
# browser the web client's tests drive (never a browser downloaded by Playwright). Safe to run
# again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v sox >/dev/null || need+=(sox libsox-fmt-all)
command -v g++ >/dev/null || need+=(g++ make python3)
# The tests run the catalog against a real PostgreSQL server (a throwaway cluster when
# DATABASE_URL is not set); the server itself needs none (its default catalog is embedded).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# The web client's tests and the live-listening tests drive a real browser (its MediaRecorder).
if [ "${1:-}" = "--tests" ]; then command -v chromium >/dev/null || need+=(chromium); fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${need[*]} with apt-get"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

addon=native/build/Release/audio_ident_fp.node
if [ ! -f "$addon" ] || [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
  # The committed lockfile, as it is (npm ci never rewrites it); package.json's allowScripts
  # names which install scripts run (onnxruntime-node's CUDA download does not).
  log=$(mktemp)
  npm ci --no-audit --no-fund 2>&1 | tee "$log"
  # A new dependency with an install script must have its fate named there, not run by default.
  if grep -q "not yet covered by allowScripts" "$log"; then
    echo "setup: name the install scripts listed above in package.json's allowScripts" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
elif [ -n "$(find native/src native/binding.gyp -newer "$addon" -print -quit)" ]; then
  npm run install --silent  # the addon's sources changed since it was built
fi
npm run build --silent
npm run build:web --silent
