#!/usr/bin/env bash
# Build an igym experiment's web page with pygbag (a static site: index.html + <name>.apk).
#
#   ./build_web.sh EXPERIMENT [--out build/web] [--offline] [--server wss://HOST/PATH]
#                  [--serve] [--port N] [--no-vendor] [--gui-fonts latin|all]
#                  [--staging DIR] [--stage-only]
#
# Stages a clean copy (main.py + page_config.py, igym core, renderers as igym/renderers, the
# experiment's package, its policies, vendored pure-Python deps) and runs pygbag on it.
# --offline uses renderers/web/index.tmpl instead of pygbag's template from its CDN.
# The work is done by renderers/webbuild.py with this checkout's igym; `--help` lists every
# option. Needs pygbag: pip install 'igym[web]'. From an installed igym (no checkout), the
# same build is `igym-web EXPERIMENT …` or `python -m igym.renderers.webbuild EXPERIMENT …`.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if command -v python >/dev/null 2>&1; then PY=python; else PY=python3; fi
fi
# -P: the script's folder (renderers/) must not shadow anything on sys.path.
exec "$PY" -P "$HERE/renderers/webbuild.py" "$@"
