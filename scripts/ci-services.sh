#!/usr/bin/env bash
# Start the services the storage/queue tests need: PostgreSQL and Redis, on loopback only.
#
#   eval "$(scripts/ci-services.sh)"     # installs (first time), starts, creates the test role/db,
#                                         # and exports COMPLIANCE_TEST_PG_URL / COMPLIANCE_TEST_REDIS_URL
#
# Idempotent: run it again and it only checks that both are up (a second or so). Needs root on a
# Debian 12 machine (apt-get); all progress goes to stderr, only `export` lines go to stdout.
set -euo pipefail

PG_USER=${COMPLIANCE_PG_USER:-compliance}
PG_PASSWORD=${COMPLIANCE_PG_PASSWORD:-compliance}
PG_DB=${COMPLIANCE_PG_DB:-compliance_test}
PG_PORT=${COMPLIANCE_PG_PORT:-5432}
REDIS_PORT=${COMPLIANCE_REDIS_PORT:-6379}

log() { echo "ci-services: $*" >&2; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

need=()
[ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/postgres" ] || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine has no package lists; an up-to-date one skips the download.
    if ! apt-get install -y --no-install-recommends "${need[@]}" >&2 2>/dev/null; then
        apt-get update >&2
        apt-get install -y --no-install-recommends "${need[@]}" >&2
    fi
fi

# --- PostgreSQL -------------------------------------------------------------------------------
PGBIN=$(pg_bin)
PGVER=$(basename "$(dirname "$PGBIN")")
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$PGVER main"; then
    log "creating cluster $PGVER/main"
    pg_createcluster "$PGVER" main -p "$PG_PORT" >&2
fi
if ! pg_lsclusters -h | awk -v v="$PGVER" '$1==v && $2=="main" {print $4}' | grep -q online; then
    log "starting PostgreSQL $PGVER on 127.0.0.1:$PG_PORT"
    pg_ctlcluster "$PGVER" main start -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT" >&2
fi
for _ in $(seq 1 60); do
    su postgres -c "psql -p $PG_PORT -Atqc 'select 1'" >/dev/null 2>&1 && break
    sleep 0.5
done
psql_su() { su postgres -c "psql -p $PG_PORT -v ON_ERROR_STOP=1 -Atq $*"; }
if [ "$(psql_su "-c \"select 1 from pg_roles where rolname='$PG_USER'\"")" != "1" ]; then
    log "creating role $PG_USER"
    psql_su "-c \"create role $PG_USER login createdb password '$PG_PASSWORD'\"" >&2
fi
# Tests drop the databases they made even while a connection lingers (DROP DATABASE ... WITH (FORCE)).
psql_su "-c \"grant pg_signal_backend to $PG_USER\"" >/dev/null 2>&1 || true
if [ "$(psql_su "-c \"select 1 from pg_database where datname='$PG_DB'\"")" != "1" ]; then
    log "creating database $PG_DB"
    psql_su "-c \"create database $PG_DB owner $PG_USER\"" >&2
fi

# --- Redis ------------------------------------------------------------------------------------
if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    log "starting redis-server on 127.0.0.1:$REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save '' --appendonly no \
        --logfile /tmp/compliance-redis.log >&2
    for _ in $(seq 1 40); do
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
        sleep 0.25
    done
fi
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG || { log "redis did not start"; exit 1; }

log "PostgreSQL and Redis are up"
echo "export COMPLIANCE_TEST_PG_URL=postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
echo "export COMPLIANCE_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/15"
