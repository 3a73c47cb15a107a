#!/usr/bin/env bash
# Headless Chromium for the browser tests (results pages, the serve page): Debian's package.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  SUDO=()
elif sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "install_browser.sh: the tests need headless Chromium: run 'sudo apt-get install chromium'" >&2
  exit 1
fi
echo "install_browser.sh: installing Debian's chromium for the browser tests"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
