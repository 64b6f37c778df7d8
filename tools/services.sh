#!/usr/bin/env bash
# `make services`: the real servers the tests use, private to this checkout under .services/
# and on loopback only: MariaDB on 127.0.0.1:3307, FerretDB (MongoDB wire protocol, on SQLite)
# on 127.0.0.1:27018; and schemathesis, the API fuzzer, in a Python venv.
# Installs what is missing from Debian's packages when run as root (CI); otherwise says what to install.
# The credentials below are local-development values, not secrets.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/.services
mkdir -p "$root"

need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $2"
    [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq >/dev/null; APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  else
    echo "services: $1 is missing; install the Debian package $2 (as root: apt-get install $2)" >&2
    exit 1
  fi
}

wait_for() { # wait_for DESCRIPTION SECONDS COMMAND...
  local what=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "services: $what did not come up in ${seconds}s" >&2
  return 1
}

mariadb_up() {
  need mariadbd mariadb-server
  local dir=$root/mariadb sock=$root/mariadb/mysqld.sock user
  user=$(id -un)
  if mariadb -h 127.0.0.1 -P 3307 -u earshot -pearshot-local-dev -e 'SELECT 1' earshot_test >/dev/null 2>&1; then
    echo "mariadb: running on 127.0.0.1:3307"
    return
  fi
  mkdir -p "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --no-defaults --user="$user" --datadir="$dir/data" --auth-root-authentication-method=socket \
      --auth-root-socket-user="$user" >"$dir/install.log" 2>&1
  fi
  setsid mariadbd --no-defaults --user="$user" --datadir="$dir/data" --socket="$sock" --port=3307 \
    --bind-address=127.0.0.1 --pid-file="$dir/mariadbd.pid" --log-error="$dir/error.log" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci </dev/null >/dev/null 2>&1 &
  wait_for mariadb 60 mariadb-admin --socket="$sock" ping
  mariadb --socket="$sock" -u "$user" <<'SQL'
CREATE DATABASE IF NOT EXISTS earshot CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS earshot_test CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'earshot'@'127.0.0.1' IDENTIFIED BY 'earshot-local-dev';
CREATE USER IF NOT EXISTS 'earshot'@'localhost' IDENTIFIED BY 'earshot-local-dev';
GRANT ALL ON earshot.* TO 'earshot'@'127.0.0.1', 'earshot'@'localhost';
GRANT ALL ON earshot_test.* TO 'earshot'@'127.0.0.1', 'earshot'@'localhost';
SQL
  echo "mariadb: running on 127.0.0.1:3307 (user earshot, password earshot-local-dev: local development only)"
}

mariadb_down() {
  local pid=$root/mariadb/mariadbd.pid
  [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null && echo "mariadb: stopped" || true
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# FerretDB from the Go module proxy, through the small launcher in tools/ferretdb.
ferretdb_up() {
  local dir=$root/ferretdb bin=$root/bin/ferretdb
  if listening 27018; then echo "ferretdb: running on 127.0.0.1:27018"; return; fi
  need go golang
  if [ ! -x "$bin" ] || [ tools/ferretdb/main.go -nt "$bin" ] || [ tools/ferretdb/go.sum -nt "$bin" ]; then
    echo "ferretdb: building (first time: a minute or two)"
    (cd tools/ferretdb && go build -o "$bin" .)
  fi
  mkdir -p "$dir"
  setsid "$bin" -listen 127.0.0.1:27018 -data "$dir/data" </dev/null >"$dir/log" 2>&1 &
  echo $! >"$dir/pid"
  wait_for ferretdb 30 listening 27018
  echo "ferretdb: running on 127.0.0.1:27018 (MEDIA_URL=mongodb://127.0.0.1:27018/earshot)"
}

ferretdb_down() {
  local pid=$root/ferretdb/pid
  [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null && echo "ferretdb: stopped" || true
}

# schemathesis (PyPI), the API fuzzer the tests run against functions/openapi.yaml; a tool, not a server.
SCHEMATHESIS_VERSION=4.32.5
schemathesis_up() {
  local venv=$root/schemathesis
  if [ -x "$venv/bin/schemathesis" ] && "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    echo "schemathesis: $SCHEMATHESIS_VERSION in .services/schemathesis"
    return
  fi
  need python3 python3
  python3 -m venv "$venv" 2>/dev/null || { need_module_venv; python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
  echo "schemathesis: $SCHEMATHESIS_VERSION installed in .services/schemathesis"
}
need_module_venv() { # Debian's python3 has venv in a package of its own
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get install -y -qq python3-venv >/dev/null; else
    echo "services: python3 -m venv does not work; install the Debian package python3-venv" >&2; exit 1; fi
}

case "${1:-up}" in
  up) mariadb_up; ferretdb_up; schemathesis_up ;;
  down) mariadb_down; ferretdb_down ;;
  *) echo "usage: tools/services.sh [up|down]" >&2; exit 2 ;;
esac
