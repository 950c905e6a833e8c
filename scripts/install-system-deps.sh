#!/usr/bin/env bash
# Debian packages the tests need:
#   - Chromium for the browser tests (driven by Playwright);
#   - Java 17 (openjdk-17-jre-headless) for the Spark engine's parity tests (PySpark 4 needs Java 17+).
# Each is pinned to the version tested; if the mirror no longer carries it, the current bookworm build is taken
# and a notice printed. Nothing is installed when what is there already fits. Needs root (as on CI) or sudo.
set -euo pipefail
CHROMIUM_VERSION="156.0.8078.79-1~deb12u1"
JAVA_PACKAGE="openjdk-17-jre-headless"
# bookworm main's build (tests also pass on 17.0.15); security updates replace it on the mirror over time
JAVA_VERSION="17.0.19+10-1~deb12u2"
JAVA_MIN_MAJOR=17

# The major version of `java` on PATH (0 when there is none): "17.0.15" -> 17, "1.8.0_392" -> 8.
java_major() {
  local line major
  command -v java >/dev/null 2>&1 || { echo 0; return; }
  line="$(java -version 2>&1 | grep -m1 -o 'version "[0-9][0-9._]*' || true)"
  major="$(printf '%s' "${line#version \"}" | cut -d. -f1)"
  if [ "$major" = "1" ]; then major="$(printf '%s' "${line#version \"}" | cut -d. -f2)"; fi
  case "$major" in ''|*[!0-9]*) echo 0 ;; *) echo "$major" ;; esac
}

need_chromium=0
need_java=0
[ -x /usr/bin/chromium ] || need_chromium=1
[ "$(java_major)" -ge "$JAVA_MIN_MAJOR" ] || need_java=1
if [ "$need_chromium" -eq 0 ] && [ "$need_java" -eq 0 ]; then
  exit 0
fi

missing=""
[ "$need_chromium" -eq 1 ] && missing="chromium"
[ "$need_java" -eq 1 ] && missing="${missing:+$missing }${JAVA_PACKAGE}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-system-deps: ${missing} missing (or Java older than ${JAVA_MIN_MAJOR}) and this user cannot" \
         "install Debian packages; run as root: apt-get install ${missing}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq

# install_pinned PACKAGE VERSION: the pinned version, else the current Debian build with a notice
install_pinned() {
  if ! $SUDO apt-get install -y -qq --no-install-recommends "$1=$2" >/dev/null; then
    echo "install-system-deps: notice: $1 $2 is no longer on the mirror; installing the current Debian build" >&2
    $SUDO apt-get install -y -qq --no-install-recommends "$1" >/dev/null
  fi
}

if [ "$need_chromium" -eq 1 ]; then
  install_pinned chromium "$CHROMIUM_VERSION"
  /usr/bin/chromium --version
fi
if [ "$need_java" -eq 1 ]; then
  # the JRE's post-install scripts expect the man page folder that slim images delete
  $SUDO mkdir -p /usr/share/man/man1
  install_pinned "$JAVA_PACKAGE" "$JAVA_VERSION"
  # a Java older than 17 may still come first on PATH: make 17 the default `java`
  java17="$(ls -d /usr/lib/jvm/java-17-openjdk-*/bin/java 2>/dev/null | head -n1 || true)"
  if [ -n "$java17" ] && [ "$(java_major)" -lt "$JAVA_MIN_MAJOR" ]; then
    $SUDO update-alternatives --set java "$java17"
  fi
  if [ "$(java_major)" -lt "$JAVA_MIN_MAJOR" ]; then
    echo "install-system-deps: Java ${JAVA_MIN_MAJOR}+ is still not the default \`java\` ($(command -v java || echo none));" \
         "set JAVA_HOME to a Java ${JAVA_MIN_MAJOR} installation for the Spark engine" >&2
    exit 1
  fi
  java -version 2>&1 | head -n1
fi
