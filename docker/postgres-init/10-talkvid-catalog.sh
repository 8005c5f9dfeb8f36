#!/bin/sh
# Runs once, when the PostgreSQL volume is first initialised (the official image's /docker-entrypoint-initdb.d):
# the talkvid catalog gets its own role and database beside Airflow's metadata database.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v catalog_password="$TALKVID_DB_PASSWORD" <<'SQL'
CREATE ROLE talkvid LOGIN PASSWORD :'catalog_password';
CREATE DATABASE talkvid OWNER talkvid;
SQL
