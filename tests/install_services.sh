#!/usr/bin/env bash
# What the tests need beyond Python packages, installed once before `pytest` (the README's test
# command runs this; tests never install anything themselves):
#   - Debian packages: chromium (browser tests), redis-server and postgresql (scale-out tests), npm,
#     caddy, nginx, openssl and systemd (the shipped deployment files, tried for real);
#   - the browser-side npm packages of tests/web/package.json (Pyodide, onnxruntime-web, msgpack)
#     in ${IGYM_WEB_CACHE:-~/.cache/igym-web}.
# Whatever is present already is left alone; without root/apt-get it says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v npm >/dev/null || missing+=(npm)
command -v caddy >/dev/null || missing+=(caddy)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v openssl >/dev/null || missing+=(openssl)
command -v systemd-analyze >/dev/null || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install_services: apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "install_services: please install these Debian packages (as root): ${missing[*]}" >&2
    exit 1
  fi
fi
# apt starts a system redis/postgresql service; the tests start their own on free ports instead.

cache="${IGYM_WEB_CACHE:-$HOME/.cache/igym-web}"
needed=(pyodide/pyodide.mjs pyodide/pyodide.asm.wasm onnxruntime-web/dist/ort.wasm.min.js
        onnxruntime-web/dist/ort-wasm-simd-threaded.wasm @msgpack/msgpack/dist.umd/msgpack.min.js)
for file in "${needed[@]}"; do
  if [ ! -f "$cache/node_modules/$file" ]; then
    echo "install_services: npm install (Pyodide, onnxruntime-web, msgpack) into $cache"
    mkdir -p "$cache"
    cp tests/web/package.json "$cache/package.json"
    (cd "$cache" && npm install --no-audit --no-fund --loglevel=error)
    break
  fi
done
# apt may start system nginx/caddy services on ports 80/443; the tests use their own free ports.
echo "install_services: chromium, redis-server, postgresql, caddy, nginx and the browser packages are ready"
