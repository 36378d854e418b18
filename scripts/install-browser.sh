#!/usr/bin/env bash
# Install headless Chromium and its driver (Debian's chromium and chromium-driver) for the test that opens the task
# reports in a real browser (tests/test_report.py), and the selenium package that drives them. Needs root and apt
# for the Debian packages; does nothing when they are there. No browser is ever downloaded by selenium itself:
# the test points it at /usr/bin/chromium and /usr/bin/chromedriver.
set -euo pipefail
PYTHON=${PYTHON:-python3}

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser.sh: chromium missing and this is not root with apt-get; the browser test will skip" >&2
  else
    export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
  fi
fi

"$PYTHON" -c "import selenium" 2>/dev/null || "$PYTHON" -m pip install -q "selenium>=4.20"
