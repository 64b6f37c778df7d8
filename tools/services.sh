#!/usr/bin/env bash
# `make services`: the real servers the tests use, private to this checkout under .services/
# and on loopback only: MariaDB on 127.0.0.1:3307, FerretDB (MongoDB wire protocol, on SQLite)
# on 127.0.0.1:27018; schemathesis, the API fuzzer, in a Python venv; and RabbitMQ (AMQP on
# 127.0.0.1:5673, management API on 127.0.0.1:15673) with eventing-rabbitmq's data plane built
# into .services/bin (rabbitmq-ingress, rabbitmq-dispatcher, and our rabbitmq-topology).
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

# The databases and the local-development user; earshot_test_<name>: databases a test makes for itself.
mariadb_grant() { # mariadb_grant SOCKET USER
  mariadb --socket="$1" -u "$2" <<'SQL'
CREATE DATABASE IF NOT EXISTS earshot CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS earshot_test CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'earshot'@'127.0.0.1' IDENTIFIED BY 'earshot-local-dev';
CREATE USER IF NOT EXISTS 'earshot'@'localhost' IDENTIFIED BY 'earshot-local-dev';
GRANT ALL ON earshot.* TO 'earshot'@'127.0.0.1', 'earshot'@'localhost';
GRANT ALL ON `earshot\_test%`.* TO 'earshot'@'127.0.0.1', 'earshot'@'localhost';
SQL
}

mariadb_up() {
  need mariadbd mariadb-server
  local dir=$root/mariadb sock=$root/mariadb/mysqld.sock user
  user=$(id -un)
  if mariadb -h 127.0.0.1 -P 3307 -u earshot -pearshot-local-dev -e 'SELECT 1' earshot_test >/dev/null 2>&1; then
    mariadb_grant "$sock" "$user" || true # a node started by an older checkout may lack newer grants
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
  mariadb_grant "$sock" "$user"
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

# RabbitMQ from Debian, as a private node: its own Erlang cookie (HOME), epmd port, data and logs
# under .services/rabbitmq, and ports that never clash with a system RabbitMQ (5672/15672/25672/4369).
# /usr/sbin/rabbitmqctl switches to the rabbitmq user, so the scripts under /usr/lib/rabbitmq/bin are used.
# Another node beside it (the broker fault tests restart their own) sets RABBITMQ_DIR, _NODE and the ports;
# RABBITMQ_IP moves AMQP and the management API off loopback (test/multihost.test.ts: a node in a
# network namespace of its own); epmd and distribution stay on the node's loopback.
: "${RABBITMQ_DIR:=$root/rabbitmq}" "${RABBITMQ_NODE:=earshot@localhost}" "${RABBITMQ_AMQP_PORT:=5673}" "${RABBITMQ_HTTP_PORT:=15673}"
: "${RABBITMQ_DIST_PORT:=25673}" "${RABBITMQ_EPMD_PORT:=4371}" "${RABBITMQ_IP:=127.0.0.1}"
RABBITMQ_USER=earshot RABBITMQ_PASSWORD=earshot-local-dev # local development only
rabbitmq_env() { # runs "$@" with the node's environment
  HOME=$RABBITMQ_DIR ERL_EPMD_PORT=$RABBITMQ_EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1 \
    RABBITMQ_CONF_ENV_FILE=$RABBITMQ_DIR/rabbitmq-env.conf "$@"
}
rabbitmq_api_up() { curl -fsS -u "$RABBITMQ_USER:$RABBITMQ_PASSWORD" "http://$RABBITMQ_IP:$RABBITMQ_HTTP_PORT/api/overview"; }

rabbitmq_up() {
  local dir=$RABBITMQ_DIR
  need /usr/lib/rabbitmq/bin/rabbitmq-server rabbitmq-server
  need curl curl
  if rabbitmq_api_up >/dev/null 2>&1; then echo "rabbitmq: running on $RABBITMQ_IP:$RABBITMQ_AMQP_PORT"; rabbitmq_build; return; fi
  mkdir -p "$dir"
  cat >"$dir/rabbitmq-env.conf" <<EOF
NODENAME=$RABBITMQ_NODE
NODE_IP_ADDRESS=$RABBITMQ_IP
NODE_PORT=$RABBITMQ_AMQP_PORT
DIST_PORT=$RABBITMQ_DIST_PORT
MNESIA_BASE=$dir/mnesia
LOG_BASE=$dir/log
PID_FILE=$dir/rabbitmq.pid
CONFIG_FILE=$dir/rabbitmq.conf
ENABLED_PLUGINS_FILE=$dir/enabled_plugins
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
  # consumer_timeout as in eventing/rabbitmq.yaml. The default user is made on the first boot only.
  cat >"$dir/rabbitmq.conf" <<EOF
consumer_timeout = 28800000
management.tcp.ip = $RABBITMQ_IP
management.tcp.port = $RABBITMQ_HTTP_PORT
default_user = $RABBITMQ_USER
default_pass = $RABBITMQ_PASSWORD
default_user_tags.administrator = true
EOF
  echo '[rabbitmq_management].' >"$dir/enabled_plugins"
  rabbitmq_env setsid /usr/lib/rabbitmq/bin/rabbitmq-server </dev/null >"$dir/server.log" 2>&1 &
  wait_for rabbitmq 90 rabbitmq_api_up
  echo "rabbitmq: running on $RABBITMQ_IP:$RABBITMQ_AMQP_PORT, management http://$RABBITMQ_IP:$RABBITMQ_HTTP_PORT" \
    "(RABBITMQ_URL=amqp://$RABBITMQ_USER:$RABBITMQ_PASSWORD@$RABBITMQ_IP:$RABBITMQ_AMQP_PORT/: local development only)"
  rabbitmq_build
}

rabbitmq_down() {
  [ -f "$RABBITMQ_DIR/rabbitmq-env.conf" ] || return 0
  # With the pid file, stop waits for the node to exit; then our private epmd has nothing left to serve.
  # A node that is gone already is not waited for (rabbitmqctl would wait for it without end).
  local pid; pid=$(cat "$RABBITMQ_DIR/rabbitmq.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    rabbitmq_env timeout 120 /usr/lib/rabbitmq/bin/rabbitmqctl -n "$RABBITMQ_NODE" stop "$RABBITMQ_DIR/rabbitmq.pid" >/dev/null 2>&1 \
      && echo "rabbitmq: stopped" || echo "rabbitmq: did not stop within 120 s" >&2
  fi
  rabbitmq_env epmd -kill >/dev/null 2>&1 || true
}

# eventing-rabbitmq's ingress and dispatcher (the images its controller deploys), and our topology
# program, from tools/rabbitmq; rebuilt when a file there is newer than the binaries.
rabbitmq_build() {
  local bin=$root/bin name
  if [ -x "$bin/rabbitmq-topology" ] && [ -z "$(find tools/rabbitmq -type f -newer "$bin/rabbitmq-topology")" ]; then return; fi
  need go golang
  echo "rabbitmq: building ingress, dispatcher and topology (first time: about 4 minutes)"
  mkdir -p "$bin"
  # The checksum database lacks some knative.dev versions; go.sum pins what was verified here.
  for name in ingress dispatcher; do
    (cd tools/rabbitmq && GONOSUMDB=knative.dev go build -o "$bin/rabbitmq-$name" "knative.dev/eventing-rabbitmq/cmd/$name")
  done
  (cd tools/rabbitmq && GONOSUMDB=knative.dev go build -o "$bin/rabbitmq-topology" .)
}

case "${1:-up}" in
  up) mariadb_up; ferretdb_up; schemathesis_up; rabbitmq_up ;;
  down) mariadb_down; ferretdb_down; rabbitmq_down ;;
  rabbitmq-up) rabbitmq_up ;;
  rabbitmq-down) rabbitmq_down ;;
  *) echo "usage: tools/services.sh [up|down|rabbitmq-up|rabbitmq-down]" >&2; exit 2 ;;
esac
