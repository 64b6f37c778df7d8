#!/usr/bin/env bash
# `make services`: the real servers the tests use, private to this checkout under .services/
# and on loopback only: MariaDB on 127.0.0.1:3307, FerretDB (MongoDB wire protocol) on a private
# PostgreSQL (127.0.0.1:5433) on 127.0.0.1:27018 and on SQLite on 127.0.0.1:27019 (make bench
# measures both); schemathesis, the API fuzzer, in a Python venv; and RabbitMQ (AMQP on
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

# PostgreSQL from Debian, as a private cluster for FerretDB: data and socket under .services/postgresql,
# TCP on 127.0.0.1:5433 only (never clashing with a system PostgreSQL on 5432). PostgreSQL refuses to
# run as root, so as root the cluster belongs to the postgres user Debian's package creates.
PG_PORT=5433 PG_USER=earshot PG_PASSWORD=earshot-local-dev # local development only
pg_bin() { # the newest installed major version's programs
  local dir; dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}
pg_as_owner() { # runs "$@" as the cluster's owner
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_ready() { PGPASSWORD=$PG_PASSWORD "$(pg_bin)/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d ferretdb -tAc 'SELECT 1' >/dev/null 2>&1; }

# Under .services/ when the cluster's owner can reach it; as root in a checkout the postgres user
# cannot enter (under /root, say), a folder of its own in /var/tmp named after this checkout.
pg_dir() {
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$root" 2>/dev/null; then echo "$root/postgresql"; return; fi
  echo "/var/tmp/earshot-postgresql-$(echo "$root" | md5sum | cut -c1-12)"
}

postgresql_up() {
  local dir bin
  if ! bin=$(pg_bin); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing postgresql"
      [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq >/dev/null; APT_UPDATED=1; }
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      bin=$(pg_bin)
    else
      echo "services: PostgreSQL (initdb, pg_ctl) is missing; install the Debian package postgresql (as root: apt-get install postgresql)" >&2
      exit 1
    fi
  fi
  if pg_ready; then echo "postgresql: running on 127.0.0.1:$PG_PORT"; return; fi
  dir=$(pg_dir)
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
      echo "services: the postgres user cannot reach $dir (a directory above it is not searchable by others)" >&2
      exit 1
    fi
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    local pwfile; pwfile=$(pg_as_owner mktemp)
    echo "$PG_PASSWORD" | pg_as_owner tee "$pwfile" >/dev/null
    pg_as_owner "$bin/initdb" -D "$dir/data" -U "$PG_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$pwfile"
  fi
  # The socket beside the data: the owner can write there (/run/postgresql may be missing, or root's).
  if ! pg_as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    pg_as_owner setsid "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir" start </dev/null >/dev/null
  fi
  if ! pg_as_owner "$bin/psql" -h "$dir" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'ferretdb'" | grep -q 1; then
    pg_as_owner "$bin/createdb" -h "$dir" -p "$PG_PORT" -U "$PG_USER" ferretdb
  fi
  wait_for postgresql 30 pg_ready
  echo "postgresql: running on 127.0.0.1:$PG_PORT (database ferretdb, user $PG_USER, password $PG_PASSWORD: local development only)"
}

postgresql_down() {
  local dir bin
  dir=$(pg_dir)
  bin=$(pg_bin) || return 0
  [ -f "$dir/data/postmaster.pid" ] || return 0
  pg_as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 && echo "postgresql: stopped" || true
}

# FerretDB from the Go module proxy, through the small launcher in tools/ferretdb: one server per
# backend. The faster on `make bench`'s B3 listens on 127.0.0.1:27018, where the tests, CI and
# MEDIA_URL examples look; the other on 127.0.0.1:27019, for the bench to measure both.
: "${FERRETDB_DEFAULT:=postgresql}" # or sqlite
ferretdb_port() { if [ "$1" = "$FERRETDB_DEFAULT" ]; then echo 27018; else echo 27019; fi; }

ferretdb_build() {
  local bin=$root/bin/ferretdb
  if [ -x "$bin" ] && [ ! tools/ferretdb/main.go -nt "$bin" ] && [ ! tools/ferretdb/go.sum -nt "$bin" ]; then return; fi
  need go golang
  echo "ferretdb: building (first time: a minute or two)"
  mkdir -p "$root/bin"
  # Renamed into place: a running server keeps its binary.
  (cd tools/ferretdb && go build -o "$bin.new" .) && mv "$bin.new" "$bin"
}

ferretdb_dir() { if [ "$1" = sqlite ]; then echo "$root/ferretdb"; else echo "$root/ferretdb-$1"; fi; }
ferretdb_pid() { # the pid of this checkout's FerretDB on BACKEND, if it runs
  local pid; pid=$(cat "$(ferretdb_dir "$1")/pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && echo "$pid"
}
ferretdb_on_its_port() { # ferretdb_on_its_port BACKEND PID
  tr '\0' ' ' <"/proc/$2/cmdline" | grep -q -- "-listen 127.0.0.1:$(ferretdb_port "$1") "
}

ferretdb_up() { # ferretdb_up BACKEND (sqlite or postgresql)
  local backend=$1 port dir pid
  port=$(ferretdb_port "$backend")
  dir=$(ferretdb_dir "$backend")
  if [ "$backend" = postgresql ]; then postgresql_up; fi
  if pid=$(ferretdb_pid "$backend") && ferretdb_on_its_port "$backend" "$pid" && listening "$port"; then
    echo "ferretdb: $backend running on 127.0.0.1:$port"
    return
  fi
  if listening "$port"; then
    # Another checkout's make services, most likely: its server serves this one as well.
    echo "ferretdb: 127.0.0.1:$port is served by a process not of this checkout; using it"
    return
  fi
  ferretdb_build
  mkdir -p "$dir"
  if [ "$backend" = postgresql ]; then
    setsid "$root/bin/ferretdb" -listen "127.0.0.1:$port" -handler postgresql \
      -postgresql-url "postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/ferretdb" </dev/null >"$dir/log" 2>&1 &
  else
    setsid "$root/bin/ferretdb" -listen "127.0.0.1:$port" -handler sqlite -data "$dir/data" </dev/null >"$dir/log" 2>&1 &
  fi
  echo $! >"$dir/pid"
  wait_for "ferretdb ($backend)" 30 listening "$port"
  if [ "$port" = 27018 ]; then
    echo "ferretdb: $backend running on 127.0.0.1:27018 (MEDIA_URL=mongodb://127.0.0.1:27018/earshot)"
  else
    echo "ferretdb: $backend running on 127.0.0.1:$port (make bench's B3 measures it beside the one on 27018)"
  fi
}

ferretdbs_up() {
  local backend pid
  # Servers of ours on the other's port (FERRETDB_DEFAULT changed, or a checkout from before both
  # backends ran SQLite on 27018) stop first, so that both ports are free to move to.
  for backend in sqlite postgresql; do
    if pid=$(ferretdb_pid "$backend") && ! ferretdb_on_its_port "$backend" "$pid"; then
      echo "ferretdb: moving $backend to 127.0.0.1:$(ferretdb_port "$backend")"
      ferretdb_stop "$pid"
    fi
  done
  ferretdb_up "$FERRETDB_DEFAULT"
  if [ "$FERRETDB_DEFAULT" = postgresql ]; then ferretdb_up sqlite; else ferretdb_up postgresql; fi
}

ferretdb_stop() { # ferretdb_stop PID: SIGTERM, and up to 10 s for it to exit (and free its port)
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
}

ferretdb_down() {
  local backend pid
  for backend in sqlite postgresql; do
    if pid=$(ferretdb_pid "$backend"); then ferretdb_stop "$pid"; echo "ferretdb: $backend stopped"; fi
  done
  postgresql_down
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
  up) mariadb_up; ferretdbs_up; schemathesis_up; rabbitmq_up ;;
  down) mariadb_down; ferretdb_down; rabbitmq_down ;;
  ferretdb-up) ferretdbs_up ;;
  ferretdb-down) ferretdb_down ;;
  rabbitmq-up) rabbitmq_up ;;
  rabbitmq-down) rabbitmq_down ;;
  *) echo "usage: tools/services.sh [up|down|ferretdb-up|ferretdb-down|rabbitmq-up|rabbitmq-down]" >&2; exit 2 ;;
esac
