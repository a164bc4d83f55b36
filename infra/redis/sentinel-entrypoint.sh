#!/bin/sh
# Start a Redis Sentinel with its secrets taken from the environment.
#
# On the first start, copies sentinel.conf to $SENTINEL_STATE_DIR/sentinel.conf and appends:
#   requirepass            what clients (the app, operators) log in to this sentinel with
#   sentinel sentinel-pass what this sentinel logs in to its peers with (the same password)
#   sentinel auth-pass     the password of the ACL user `sentinel` on the Redis nodes
# then runs `redis-server <state file> --sentinel "$@"`. Sentinel rewrites the state file as it learns
# replicas, peers and the current master, so later starts keep it: to change a password, use
# SENTINEL SET / CONFIG SET on the running sentinels, or delete the state file while all are stopped.
#
# Environment:
#   REDIS_SENTINEL_PASSWORD       required: clients and peer sentinels
#   REDIS_SENTINEL_AUTH_PASSWORD  required: the Redis nodes' `sentinel` user (see entrypoint.sh)
#   SENTINEL_CONF                 the template (default /usr/local/etc/redis/sentinel.conf)
#   SENTINEL_STATE_DIR            where the state file lives (default /data)
set -eu

: "${REDIS_SENTINEL_PASSWORD:?set REDIS_SENTINEL_PASSWORD}"
: "${REDIS_SENTINEL_AUTH_PASSWORD:?set REDIS_SENTINEL_AUTH_PASSWORD}"
template="${SENTINEL_CONF:-/usr/local/etc/redis/sentinel.conf}"
state_dir="${SENTINEL_STATE_DIR:-/data}"
state="$state_dir/sentinel.conf"

quoted() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"; }

umask 077
mkdir -p "$state_dir"
if [ ! -s "$state" ]; then
    master="$(awk '$1 == "sentinel" && $2 == "monitor" { print $3 }' "$template")"
    {
        cat "$template"
        echo
        echo "requirepass $(quoted "$REDIS_SENTINEL_PASSWORD")"
        echo "sentinel sentinel-pass $(quoted "$REDIS_SENTINEL_PASSWORD")"
        echo "sentinel auth-pass $master $(quoted "$REDIS_SENTINEL_AUTH_PASSWORD")"
    } >"$state"
fi

exec redis-server "$state" --sentinel "$@"
