#!/usr/bin/env bash
# Installs Debian's chromium (and a font with Vietnamese glyphs) if missing,
# for the console's browser tests. Prints the browser's path.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi dejavu; then
  echo "chromium.sh: installing chromium and fonts-dejavu-core from Debian packages (about a minute)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi
command -v chromium
