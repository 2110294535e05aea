#!/bin/bash
# docker-entrypoint-initdb.d script for timescale/timescaledb: create the application role and
# database named by SLEDFLEET_DATABASE_URL (postgresql://USER:PASSWORD@HOST:PORT/DB), so the
# app's URL is the one place that names them. Runs once, on an empty data volume.
set -euo pipefail
url="${SLEDFLEET_DATABASE_URL:?SLEDFLEET_DATABASE_URL is not set (see .env.example)}"
re='^postgres(ql)?://([^:@/]+):([^@/]*)@[^/]+/([^?]+)'
[[ "$url" =~ $re ]] || { echo "cannot parse SLEDFLEET_DATABASE_URL" >&2; exit 1; }
user="${BASH_REMATCH[2]}" password="${BASH_REMATCH[3]}" db="${BASH_REMATCH[4]}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v app_user="$user" -v app_password="$password" -v app_db="$db" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'app_user', :'app_password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user')\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db')\gexec
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$db" \
    -c 'CREATE EXTENSION IF NOT EXISTS timescaledb'
