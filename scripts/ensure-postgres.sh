#!/usr/bin/env bash
# Makes sure the PostgreSQL Greenroom uses answers, installing and starting a
# local one if needed (Debian/Ubuntu), with role and database `greenroom`.
#
# The role is no superuser and has no well-known password: it is LOGIN
# CREATEDB (tests create a database each, libs/dbtest) NOSUPERUSER, with a
# password generated here. The whole URL, password included, is written to
# .run/database-url (mode 600), which `make up` gives the services as
# GREENROOM_DATABASE_URL and which the CLI and the tests read when no URL is
# given. A copy is kept for this OS user in
# ~/.config/greenroom/database-url (mode 600), so that another checkout on
# the same machine (a CI copy, a second clone) reuses the password instead
# of replacing it under the first. A role left by an older version
# (SUPERUSER, password `greenroom`) is changed in place to that.
#
# When GREENROOM_DATABASE_URL names another server (anything but the URL in
# .run/database-url), it only checks that the server answers and changes
# nothing.
#
# Idempotent: run it as often as you like; the password stays the same
# while it works.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# What the local URL names.
role=greenroom
database=greenroom
# The URL of the role's password before this script generated one: it must
# no longer let anyone in.
legacy_url="postgres://greenroom:greenroom@127.0.0.1:5432/greenroom?sslmode=disable"

url="$(local_database_url)"
shared_url_file="${XDG_CONFIG_HOME:-${HOME:-/nonexistent}/.config}/greenroom/database-url"

# answers URL: a query as the URL's role succeeds.
answers() {
	command -v psql >/dev/null 2>&1 && PGCONNECT_TIMEOUT=5 psql "$1" -XAtqc 'SELECT 1' >/dev/null 2>&1
}

# save_url URL: writes URL to .run/database-url and to this OS user's copy
# (both mode 600).
save_url() {
	local f
	for f in "$database_url_file" "$shared_url_file"; do
		mkdir -p "$(dirname "$f")" 2>/dev/null || continue
		(umask 077 && printf '%s\n' "$1" >"$f.tmp" && mv "$f.tmp" "$f") 2>/dev/null ||
			say "could not write $f"
	done
}

# is_restricted URL: the URL's role may create databases for tests, and is
# no superuser.
is_restricted() {
	[[ "$(psql "$1" -XAtqc 'SELECT NOT rolsuper AND rolcreatedb FROM pg_roles WHERE rolname = current_user' 2>/dev/null)" == t ]]
}

if [[ -n "${GREENROOM_DATABASE_URL:-}" && "$GREENROOM_DATABASE_URL" != "$url" ]]; then
	say "GREENROOM_DATABASE_URL points at another server; only checking that it answers"
	if ! command -v psql >/dev/null 2>&1; then
		die "psql is missing, so the server cannot be checked: install postgresql-client"
	fi
	if ! psql "$GREENROOM_DATABASE_URL" -XAtqc 'SELECT 1' >/dev/null; then
		die "PostgreSQL at GREENROOM_DATABASE_URL does not answer (see the psql error above)"
	fi
	say "PostgreSQL at GREENROOM_DATABASE_URL answers"
	exit 0
fi

# A checkout without a working .run/database-url takes this OS user's copy
# when that one works.
if ! { [[ -n "$url" ]] && answers "$url"; }; then
	shared="$(cat "$shared_url_file" 2>/dev/null || true)"
	if [[ -n "$shared" ]] && answers "$shared"; then
		url="$shared"
		save_url "$url"
		say "took the database URL of $shared_url_file into .run/database-url"
	fi
fi

# Fast path: already set up (needs no privileges).
if [[ -n "$url" ]] && answers "$url" && is_restricted "$url" && ! answers "$legacy_url"; then
	[[ -s "$shared_url_file" ]] || save_url "$url"
	say "PostgreSQL ready at 127.0.0.1:5432 (database $database, role $role; URL in .run/database-url)"
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

# 4. Role and database. The password: the one of .run/database-url while
# it works, else a new one.
psql_admin() { as_postgres psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
password=""
if [[ -n "$url" ]] && answers "$url"; then
	password="$(sed -nE 's#^postgres://[^:/@]+:([0-9a-f]+)@.*#\1#p' <<<"$url")"
fi
if [[ -z "$password" ]]; then
	password="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
	say "generated a new password for role $role into .run/database-url"
fi
if [[ -z "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" ]]; then
	say "creating role $role (LOGIN CREATEDB, not a superuser)"
	psql_admin "CREATE ROLE $role LOGIN NOSUPERUSER CREATEDB PASSWORD '$password'" >/dev/null
else
	say "setting role $role to LOGIN CREATEDB NOSUPERUSER with the password of .run/database-url"
	psql_admin "ALTER ROLE $role LOGIN NOSUPERUSER CREATEDB PASSWORD '$password'" >/dev/null
fi
url="postgres://$role:$password@127.0.0.1:5432/$database?sslmode=disable"
save_url "$url"
if [[ -z "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$database'")" ]]; then
	say "creating database $database"
	psql_admin "CREATE DATABASE $database OWNER $role" >/dev/null
fi

if ! answers "$url"; then
	die "PostgreSQL runs, but the URL in .run/database-url is refused: check pg_hba.conf allows password logins from 127.0.0.1"
fi
if answers "$legacy_url"; then
	die "role $role still accepts the well-known password"
fi
say "PostgreSQL ready at 127.0.0.1:5432 (database $database, role $role; URL in .run/database-url)"
