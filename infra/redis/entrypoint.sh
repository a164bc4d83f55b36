#!/bin/sh
# Start redis-server with users and secrets taken from the environment.
#
# redis.conf cannot read environment variables, so this script writes, at every start:
#   $REDIS_RUNTIME_DIR/users.acl      the ACL users, passwords stored as SHA-256 (never in clear)
#   $REDIS_RUNTIME_DIR/runtime.conf   `include` of redis.conf, then what depends on the environment
# and runs `redis-server runtime.conf "$@"`. Secrets never appear on a command line (ps, /proc).
# Sentinel may CONFIG REWRITE runtime.conf after a failover; it is regenerated at the next start.
#
# Environment:
#   REDIS_ADMIN_PASSWORD          required: user `admin` (all commands; operators, health checks)
#   REDIS_APP_PASSWORD            required: user `app` (the Django app; see redis.conf for its rights)
#   REDIS_REPLICA_PASSWORD        optional: user `replica`, and what a replica logs in to its master with
#   REDIS_SENTINEL_AUTH_PASSWORD  optional: user `sentinel`, which the sentinels log in as
#   REDIS_REPLICAOF               optional: "host port" of the master, to start as a replica
#   REDIS_ANNOUNCE_HOST           optional: the name other nodes and Sentinel should use for this one
#   REDIS_MAXMEMORY               optional: overrides maxmemory (e.g. 512mb)
#   REDIS_CONF                    the redis.conf to include (default /usr/local/etc/redis/redis.conf)
#   REDIS_RUNTIME_DIR             where the two generated files go (default /data)
set -eu

: "${REDIS_ADMIN_PASSWORD:?set REDIS_ADMIN_PASSWORD}"
: "${REDIS_APP_PASSWORD:?set REDIS_APP_PASSWORD}"
conf="${REDIS_CONF:-/usr/local/etc/redis/redis.conf}"
runtime_dir="${REDIS_RUNTIME_DIR:-/data}"

# The app's key prefixes (techbirdsfly/cache/policy.py: APPS and DEFAULT_PREFIX; a test keeps them in step).
app_keys="~AuthService_* ~BillingService_* ~AdminService_* ~ImageService_* ~UserService_* ~TechBirdsFly_*"
# Strings, TTLs, SCAN, UNLINK, MGET, pipelines and MULTI/EXEC (django-redis set_many), INFO and PING,
# EVALSHA/SCRIPT LOAD for redis-py's Lock release (a script runs with this user's rights and keys),
# and the CLUSTER queries redis-py's cluster client discovers the topology with.
# FLUSHALL, FLUSHDB, KEYS, CONFIG and DEBUG are all @dangerous; they are named again to make the intent plain.
app_rules="-@all +@connection +@read +@write +@keyspace +@string +@transaction -@dangerous -function \
+info +eval +evalsha +script|load +cluster|slots +cluster|shards +cluster|nodes +cluster|info +cluster|myid \
-flushall -flushdb -keys -config -debug"

sha256() { printf '%s' "$1" | sha256sum | cut -d ' ' -f 1; }
# A value for a double-quoted redis.conf string.
quoted() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"; }

umask 077
mkdir -p "$runtime_dir"
acl_file="$runtime_dir/users.acl"
runtime_conf="$runtime_dir/runtime.conf"

{
    echo "user default off resetkeys resetchannels -@all"
    echo "user admin on #$(sha256 "$REDIS_ADMIN_PASSWORD") ~* &* +@all"
    echo "user app on #$(sha256 "$REDIS_APP_PASSWORD") resetchannels $app_keys $app_rules"
    if [ -n "${REDIS_REPLICA_PASSWORD:-}" ]; then
        echo "user replica on #$(sha256 "$REDIS_REPLICA_PASSWORD") -@all +psync +replconf +ping"
    fi
    if [ -n "${REDIS_SENTINEL_AUTH_PASSWORD:-}" ]; then
        # The rights Sentinel needs, as listed in the Redis Sentinel documentation.
        echo "user sentinel on #$(sha256 "$REDIS_SENTINEL_AUTH_PASSWORD") allchannels -@all +multi +slaveof +ping \
+exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill"
    fi
} >"$acl_file"

{
    echo "include $(quoted "$conf")"
    echo "aclfile $(quoted "$acl_file")"
    if [ -n "${REDIS_MAXMEMORY:-}" ]; then
        echo "maxmemory $REDIS_MAXMEMORY"
    fi
    if [ -n "${REDIS_REPLICA_PASSWORD:-}" ]; then
        echo "masteruser replica"
        echo "masterauth $(quoted "$REDIS_REPLICA_PASSWORD")"
    fi
    if [ -n "${REDIS_ANNOUNCE_HOST:-}" ]; then
        echo "replica-announce-ip $REDIS_ANNOUNCE_HOST"
    fi
    if [ -n "${REDIS_REPLICAOF:-}" ]; then
        echo "replicaof $REDIS_REPLICAOF"
    fi
} >"$runtime_conf"

exec redis-server "$runtime_conf" "$@"
