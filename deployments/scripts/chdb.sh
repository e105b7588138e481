#!/usr/bin/env bash
# Fetches (if missing) ClickHouse 26.x as a library, chDB's libchdb.so from
# the npm registry, for the tests that prove the project's SQL on a modern
# engine (build tag chdb). Prints the library's path. Idempotent.
set -euo pipefail
CHDB_PACKAGE=${CHDB_PACKAGE:-@chdb/lib-linux-x64-gnu@26.7.3-stable.1}
CHDB_DIR=${CHDB_DIR:-$PWD/data/chdb}
lib="$CHDB_DIR/package/libchdb.so"
if [ ! -s "$lib" ]; then
  command -v npm >/dev/null 2>&1 || {
    echo "chdb.sh: installing npm from Debian packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq npm >/dev/null
  }
  mkdir -p "$CHDB_DIR"
  echo "chdb.sh: fetching $CHDB_PACKAGE (about 180 MB) into $CHDB_DIR" >&2
  tmp=$(mktemp -d "$CHDB_DIR/.fetch.XXXXXX")
  (cd "$tmp" && npm pack --silent "$CHDB_PACKAGE" >/dev/null && tar xzf ./*.tgz package/libchdb.so)
  mkdir -p "$CHDB_DIR/package"
  mv "$tmp/package/libchdb.so" "$lib"
  rm -rf "$tmp"
fi
echo "$lib"
