#!/usr/bin/env bash
# Set up everything, then run the whole test suite (slow and model tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser tests drive Debian's chromium (never `playwright install`): install it when missing.
if [ ! -x /usr/bin/chromium ]; then
    packages="chromium chromium-driver"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n apt-get update -q && sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
    else
        echo "the browser tests need /usr/bin/chromium: run 'apt-get install chromium chromium-driver' as root" >&2
        exit 1
    fi
fi
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit "$rc"
