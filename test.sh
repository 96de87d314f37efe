#!/usr/bin/env bash
# The test command: starts the real services the tests talk to (PostgreSQL and Redis on loopback,
# Debian's Chromium for the browser tests; installed with apt on first use, which needs root),
# then runs the whole suite. Extra arguments go to pytest (e.g. ./test.sh -k ingest).
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" = 0 ] || [ -n "${COMPLIANCE_TEST_PG_URL:-}" ]; then
    [ -n "${COMPLIANCE_TEST_PG_URL:-}" ] || eval "$(scripts/ci-services.sh)"
    if [ -x scripts/ci-browser.sh ]; then scripts/ci-browser.sh; fi
else
    echo "test.sh: not root: PostgreSQL/Redis/browser tests will skip unless COMPLIANCE_TEST_PG_URL and COMPLIANCE_TEST_REDIS_URL are set" >&2
fi
exec .venv/bin/python -m pytest "$@"
