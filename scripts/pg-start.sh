#!/usr/bin/env bash
# Starts the local PostgreSQL server the store's tests run against (tests/it/store.rs), on
# Debian 12 (bookworm, PostgreSQL 15 from the `postgresql` package; scripts/install-deps.sh
# installs it), and prints its URL on the last line of stdout:
#
#   postgres://haptwin:haptwin@127.0.0.1:5432/haptwin_test
#
# Idempotent: a running cluster, an existing role or database are left as they are.
#   1. the newest installed PostgreSQL's cluster `main` is created (pg_createcluster) if there
#      is none, and started (pg_ctlcluster) if it is down;
#   2. waits until it accepts connections on 127.0.0.1 (pg_isready, at most 30 s);
#   3. creates the login role `haptwin` (password `haptwin`) and the database `haptwin_test`
#      it owns, if missing (psql as the `postgres` user, over the local socket: Debian's
#      pg_hba.conf trusts `peer` there);
#   4. checks that the role logs in with its password over TCP 127.0.0.1 (Debian's pg_hba.conf
#      asks for scram-sha-256 on host connections, the server's default password_encryption).
# The tests make a schema of their own in haptwin_test and drop it afterwards.
# HAPTWIN_PG_CLUSTER names another cluster than `main` (its port is whatever pg_createcluster
# gave it). Needs root (or sudo); everything but the URL goes to stderr.
set -euo pipefail

say() { echo "pg-start: $*" >&2; }
die() {
    say "$*"
    exit 1
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if ! command -v pg_ctlcluster >/dev/null || ! command -v pg_lsclusters >/dev/null; then
    die "PostgreSQL is not installed (run scripts/install-deps.sh, or apt-get install postgresql)"
fi

ver=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
[ -n "$ver" ] || die "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)"
cluster=${HAPTWIN_PG_CLUSTER:-main}

# as_postgres CMD...: runs CMD as the postgres user, from a folder it can read.
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && sudo -u postgres -- "$@")
    fi
}

# The cluster's line of pg_lsclusters: version cluster port status owner datadir logfile.
line() { pg_lsclusters -h 2>/dev/null | awk -v v="$ver" -v c="$cluster" '$1 == v && $2 == c'; }

if [ -z "$(line)" ]; then
    say "creating cluster $ver/$cluster"
    $SUDO pg_createcluster "$ver" "$cluster" >&2 || die "pg_createcluster $ver $cluster failed"
fi
port=$(line | awk '{print $3}')
status=$(line | awk '{print $4}')
if [ "$status" != "online" ]; then
    say "starting cluster $ver/$cluster on port $port"
    # pg_ctlcluster exits 2 when the cluster is already running (another caller won the race).
    $SUDO pg_ctlcluster "$ver" "$cluster" start >&2 || [ "$?" -eq 2 ] \
        || die "pg_ctlcluster $ver $cluster start failed (see /var/log/postgresql/postgresql-$ver-$cluster.log)"
fi

for _ in $(seq 1 60); do
    if pg_isready -q -h 127.0.0.1 -p "$port"; then break; fi
    sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$port" \
    || die "the server does not accept connections on 127.0.0.1:$port after 30 s (see /var/log/postgresql/postgresql-$ver-$cluster.log)"

psql_pg() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@"; }

if [ "$(psql_pg -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'haptwin'")" != "1" ]; then
    say "creating role haptwin"
    psql_pg -c "CREATE ROLE haptwin LOGIN PASSWORD 'haptwin'" >&2
fi
if [ "$(psql_pg -tAc "SELECT 1 FROM pg_database WHERE datname = 'haptwin_test'")" != "1" ]; then
    say "creating database haptwin_test"
    psql_pg -c "CREATE DATABASE haptwin_test OWNER haptwin" >&2
fi

url="postgres://haptwin:haptwin@127.0.0.1:$port/haptwin_test"
if ! PGPASSWORD=haptwin PGCONNECT_TIMEOUT=10 psql -X -q -h 127.0.0.1 -p "$port" -U haptwin \
    -d haptwin_test -tAc "SELECT 1" >/dev/null; then
    die "role haptwin cannot log in with its password over 127.0.0.1:$port (check pg_hba.conf of $ver/$cluster)"
fi
echo "$url"
