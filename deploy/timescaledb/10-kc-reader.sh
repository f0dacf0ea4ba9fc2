#!/bin/sh
# TimescaleDB init script (docker-compose.yml mounts it into
# /docker-entrypoint-initdb.d/). The image runs it once, as the database
# superuser $POSTGRES_USER, when the data volume is first initialised, after
# its own scripts have created the timescaledb extension.
#
# Creates "kc_reader": a login role that can read every table, view and
# continuous aggregate that $POSTGRES_USER (the writer) creates, now or later,
# and write nothing. The TUI's charts connect with it.
set -eu

: "${POSTGRES_USER:?}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ -z "${KC_DB_READER_PASSWORD:-}" ]; then
    echo "10-kc-reader.sh: KC_DB_READER_PASSWORD is not set (see .env.example)" >&2
    exit 1
fi

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=reader_password="$KC_DB_READER_PASSWORD" \
    --set=owner="$POSTGRES_USER" \
    --set=dbname="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE ROLE kc_reader LOGIN PASSWORD %L', :'reader_password')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kc_reader') \gexec
SELECT format('ALTER ROLE kc_reader LOGIN PASSWORD %L', :'reader_password') \gexec
ALTER ROLE kc_reader SET default_transaction_read_only = on;
GRANT CONNECT ON DATABASE :"dbname" TO kc_reader;
GRANT USAGE ON SCHEMA public TO kc_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO kc_reader;
-- Whatever the owner creates later, in any schema it creates.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" GRANT SELECT ON TABLES TO kc_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" GRANT USAGE ON SCHEMAS TO kc_reader;
SQL
echo "10-kc-reader.sh: role kc_reader ready (read-only)" >&2
