#!/usr/bin/env bash
# Makes sure the PostgreSQL Greenroom uses answers, installing and starting a
# local one if needed (Debian/Ubuntu), with role and database `greenroom`
# (password `greenroom`). The role is a superuser so that tests may CREATE
# DATABASE (libs/dbtest gives each test its own database).
#
# When GREENROOM_DATABASE_URL names another server, it only checks that the
# server answers and changes nothing.
#
# Idempotent: run it as often as you like.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

url="${GREENROOM_DATABASE_URL:-$default_database_url}"
# What default_database_url names.
role=greenroom
password=greenroom
database=greenroom

# answers URL: a query as the URL's role succeeds.
answers() {
	command -v psql >/dev/null 2>&1 && psql "$1" -XAtqc 'SELECT 1' >/dev/null 2>&1
}

# is_superuser URL: the URL's role may create databases for tests.
is_superuser() {
	[[ "$(psql "$1" -XAtqc 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user' 2>/dev/null)" == t ]]
}

if [[ "$url" != "$default_database_url" ]]; then
	say "GREENROOM_DATABASE_URL points at another server; only checking that it answers"
	if ! command -v psql >/dev/null 2>&1; then
		die "psql is missing, so the server cannot be checked: install postgresql-client"
	fi
	if ! psql "$url" -XAtqc 'SELECT 1' >/dev/null; then
		die "PostgreSQL at GREENROOM_DATABASE_URL does not answer (see the psql error above)"
	fi
	say "PostgreSQL at GREENROOM_DATABASE_URL answers"
	exit 0
fi

# Fast path: already set up (needs no privileges).
if answers "$url" && is_superuser "$url"; then
	say "PostgreSQL ready at 127.0.0.1:5432 (database $database, role $role)"
	exit 0
fi

# as_postgres CMD...: runs CMD as the postgres OS user, from a directory
# that user can read.
as_postgres() {
	if [[ "$(id -u)" -eq 0 ]]; then
		(cd / && runuser -u postgres -- "$@")
	elif command -v sudo >/dev/null 2>&1; then
		(cd / && sudo -u postgres "$@")
	else
		die "need root (or sudo) to administer the local PostgreSQL"
	fi
}

latest_version() {
	local d
	for d in /usr/lib/postgresql/*/bin/postgres; do
		[[ -x "$d" ]] && basename "$(dirname "$(dirname "$d")")"
	done | sort -V | tail -n 1
}

# 1. Install.
if ! command -v pg_ctlcluster >/dev/null 2>&1 || [[ -z "$(latest_version)" ]]; then
	say "PostgreSQL is not installed; installing it with apt-get (postgresql)"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version="$(latest_version)"
[[ -n "$version" ]] || die "PostgreSQL binaries not found under /usr/lib/postgresql after installing"

# 2. A cluster, started.
cluster_field() { # FIELD: column of `pg_lsclusters` for <version> main
	pg_lsclusters --no-header 2>/dev/null | awk -v v="$version" -v f="$1" '$1 == v && $2 == "main" { print $f }'
}
if [[ -z "$(cluster_field 2)" ]]; then
	say "creating PostgreSQL $version cluster main"
	as_root pg_createcluster "$version" main >/dev/null
fi
port="$(cluster_field 3)"
if [[ "$(cluster_field 4)" != online* ]]; then
	say "starting PostgreSQL $version (cluster main, port $port)"
	if ! as_root pg_ctlcluster "$version" main start; then
		say "pg_ctlcluster failed; trying: service postgresql start"
		as_root service postgresql start
	fi
fi
if [[ "$port" != 5432 ]]; then
	die "PostgreSQL $version main listens on port $port, not 5432: set GREENROOM_DATABASE_URL to match"
fi

# 3. Wait until it answers.
for ((i = 0; i < 60; i++)); do
	if as_postgres psql -XAtqc 'SELECT 1' >/dev/null 2>&1; then
		break
	fi
	((i == 59)) && die "PostgreSQL $version did not answer within 30s (log: /var/log/postgresql/postgresql-$version-main.log)"
	sleep 0.5
done

# 4. Role and database.
psql_admin() { as_postgres psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
if [[ -z "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" ]]; then
	say "creating role $role (LOGIN SUPERUSER)"
	psql_admin "CREATE ROLE $role LOGIN SUPERUSER PASSWORD '$password'" >/dev/null
elif ! answers "$url" || ! is_superuser "$url"; then
	say "resetting role $role to LOGIN SUPERUSER with the default password"
	psql_admin "ALTER ROLE $role LOGIN SUPERUSER PASSWORD '$password'" >/dev/null
fi
if [[ -z "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$database'")" ]]; then
	say "creating database $database"
	psql_admin "CREATE DATABASE $database OWNER $role" >/dev/null
fi

if ! answers "$url"; then
	die "PostgreSQL runs, but $url is refused: check pg_hba.conf allows password logins from 127.0.0.1"
fi
say "PostgreSQL ready at 127.0.0.1:5432 (database $database, role $role)"
