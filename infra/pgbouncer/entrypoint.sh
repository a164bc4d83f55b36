#!/bin/sh
# Start pgbouncer with the password of the app's database user taken from the environment.
#
# pgbouncer.ini cannot read environment variables, so this script writes the auth file at every start
# (readable by this user only) and runs `pgbouncer pgbouncer.ini`. The password never appears on a
# command line (ps, /proc).
#
# Environment:
#   PGBOUNCER_USER      the database user the app logs in as (default techbirdsfly)
#   POSTGRES_PASSWORD   required: its password (pgbouncer uses it towards PostgreSQL too)
#   PGBOUNCER_CONF      the ini to run (default /etc/pgbouncer/pgbouncer.ini)
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
mkdir -p /tmp/pgbouncer
umask 077
printf '"%s" "%s"\n' "${PGBOUNCER_USER:-techbirdsfly}" "$POSTGRES_PASSWORD" > /tmp/pgbouncer/userlist.txt
exec pgbouncer "${PGBOUNCER_CONF:-/etc/pgbouncer/pgbouncer.ini}"
