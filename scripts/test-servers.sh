#!/usr/bin/env bash
# The binaries the tests need: redis-server, Postgres' initdb/pg_ctl, and chromium (the
# console's browser tests drive Debian's build through Playwright). The tests start
# their own servers from them on free ports (devtools/services); this script never
# starts, stops or configures a server. Missing ones are installed with apt when we are
# root; otherwise it says what to install and fails. (Debian's packages also enable
# their own system services; the tests do not use those.)
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test-servers: installing ${missing[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "make: the tests need ${missing[*]} (binaries only; the tests start their own servers and browser);" \
       "install them first, e.g. sudo apt install ${missing[*]}" >&2
  exit 1
fi
