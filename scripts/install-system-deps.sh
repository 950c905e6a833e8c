#!/usr/bin/env bash
# Debian packages the tests need: Chromium for the browser tests (driven by Playwright).
# Pinned to the version tested; if the mirror no longer carries it, the current bookworm build is taken
# and a notice printed. Needs root (as on CI) or sudo.
set -euo pipefail
CHROMIUM_VERSION="156.0.8078.79-1~deb12u1"

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-system-deps: Chromium is missing and this user cannot install Debian packages;" \
         "run as root: apt-get install chromium" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
if ! $SUDO apt-get install -y -qq --no-install-recommends "chromium=${CHROMIUM_VERSION}" >/dev/null; then
  echo "install-system-deps: notice: chromium ${CHROMIUM_VERSION} is no longer on the mirror;" \
       "installing the current Debian build" >&2
  $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
/usr/bin/chromium --version
