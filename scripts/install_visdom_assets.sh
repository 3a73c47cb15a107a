#!/usr/bin/env bash
# Install the JavaScript, CSS and fonts of visdom 0.2.4's web page from the npm registry into
# visdom's static folder, so that `python -m visdom.server` starts on a machine without internet
# (it otherwise downloads them from CDNs at start-up and crashes offline).
#
#   scripts/install_visdom_assets.sh                 # uses `python` on PATH
#   PYTHON=.venv/bin/python scripts/install_visdom_assets.sh
#
# Needs npm and the npm registry; the files land inside the installed visdom package (never in
# this repository). `python scripts/visdom_assets.py check` lists anything still missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
helper="$here/visdom_assets.py"

if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is not installed (Debian: apt-get install -y npm)" >&2
    exit 1
fi
# Fails with a one-line message when visdom is not installed in that Python.
"$python" "$helper" check >/dev/null || true

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
read -r -a packages <<<"$("$python" "$helper" packages)"
echo "installing ${#packages[@]} npm packages into a temporary folder"
# --ignore-scripts: these are plain file bundles; nothing needs to run at install time.
# --legacy-peer-deps: the old react-resizable/react-grid-layout peers clash with react 16, and
# only their files are wanted here, never a working dependency tree.
npm install --prefix "$work" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund --legacy-peer-deps \
    --loglevel=error "${packages[@]}"
"$python" "$helper" copy "$work/node_modules"
"$python" "$helper" check
