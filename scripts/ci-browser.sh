#!/usr/bin/env bash
# Browser tests (tests/test_web_browser.py): Debian's Chromium and CJK fonts, and the Playwright
# Python package (never `playwright install`: the tests drive /usr/bin/chromium).
# Idempotent; does nothing slow when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "ok installed" || need+=(fonts-noto-cjk)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

PY=.venv/bin/python
if ! $PY -c "import playwright" 2>/dev/null; then
    .venv/bin/pip install -q -c constraints.txt "playwright>=1.45"
fi
echo "browser tests: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium missing'); playwright $($PY -c 'import importlib.metadata as m; print(m.version("playwright"))')"
