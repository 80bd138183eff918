#!/usr/bin/env bash
# Makes sure a nats-server with JetStream answers on 127.0.0.1:4222. Builds
# bin/nats-server from its Go module if missing or of another version (no
# binary download), and starts it in the background with
# deploy/nats-server/nats-server.conf (JetStream fsyncs every write:
# README.md, "Durability"), its store in .run/nats, its log in
# .run/logs/nats-server.log and its pid in .run/nats-server.pid. If
# something already answers on 4222 it is used as is.
#
# The version: the newest 2.12 release the module proxy serves, past the
# advisories govulncheck reports against 2.12.3 (GO-2026-4826…4837 and
# GO-2026-4841, fixed in 2.12.5/2.12.6); the Go modules' embedded test
# server (go.mod) is the same version. NATS_SERVER_VERSION overrides it.
#
# Idempotent: run it as often as you like. scripts/down.sh stops it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

version="${NATS_SERVER_VERSION:-v2.12.15}"
server="$repo_root/bin/nats-server"
config="$repo_root/deploy/nats-server/nats-server.conf"
# With the deployment's users (greenroom nats-users, which make up runs
# first): every client must sign in as one, each allowed its own subjects
# only (README.md, "NATS users").
users_config="$run_dir/nats-users/nats-server.conf"
if [[ -s "$users_config" ]]; then
	config="$users_config"
fi
pidfile="$run_dir/nats-server.pid"
host=127.0.0.1
port=4222
monitor=8222

jetstream_ok() { [[ "$(http_status "$host" "$monitor" '/healthz?js-enabled-only=true')" == 200 ]]; }

# varz: the monitoring port's /varz (JSON; empty when it does not answer).
varz() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "GET /varz HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" "$0" >&3
		cat <&3
	' "$host" "$monitor" 2>/dev/null || true
}

if port_open "$host" "$port"; then
	if pid_alive "$pidfile" nats-server; then
		say "nats-server already running (pid $(cat "$pidfile")) on $host:$port"
		if [[ "$config" == "$users_config" ]]; then
			# Users added since it started (a new requester) take effect
			# now: nats-server reloads its configuration on SIGHUP.
			kill -HUP "$(cat "$pidfile")" && say "nats-server reloaded its users (.run/nats-users)"
		fi
	else
		say "something already answers on $host:$port; using it"
	fi
	if ! jetstream_ok; then
		say "warning: cannot confirm JetStream on $host:$monitor/healthz; Greenroom needs a server started with -js"
	fi
	v="$(varz)"
	if [[ -n "$v" && "$v" != *"\"version\": \"${version#v}\""* ]]; then
		say "warning: the running nats-server is not $version (make down, then make up, to restart it)"
	fi
	if [[ "$config" == "$users_config" && -n "$v" && "$v" != *'"auth_required": true'* ]]; then
		say "warning: the running nats-server lets in anyone (no users): make down, then make up, to restart it with .run/nats-users"
	fi
	if [[ -n "$v" && "$v" != *'"sync_always": true'* ]]; then
		say "warning: the running nats-server does not fsync every write (sync_interval always, README.md \"Durability\"): make down, then make up"
	fi
	exit 0
fi

# "nats-server: v2.12.15" from the binary there, if any.
built="$("$server" --version 2>/dev/null || true)"
if [[ "${built##* }" != "$version" ]]; then
	say "building nats-server $version into bin/${built:+ (was ${built##* })} (go install; takes a minute the first time)"
	(cd "$repo_root" && GOWORK=off CGO_ENABLED=0 GOBIN="$repo_root/bin" \
		go install "github.com/nats-io/nats-server/v2@$version")
fi

say "starting nats-server $version with JetStream on $host:$port (monitoring $host:$monitor, store .run/nats, sync_interval always$([[ "$config" == "$users_config" ]] && printf ', users of .run/nats-users'))"
mkdir -p "$run_dir/nats" "$log_dir"
background "$log_dir/nats-server.log" "$pidfile" \
	"$server" -c "$config" -js -sd "$run_dir/nats" -a "$host" -p "$port" -m "$monitor"

for ((i = 0; i < 100; i++)); do
	if port_open "$host" "$port" && jetstream_ok; then
		say "nats-server ready (pid $(cat "$pidfile")) at nats://$host:$port"
		exit 0
	fi
	if ! pid_alive "$pidfile" nats-server; then
		tail -n 20 "$log_dir/nats-server.log" >&2 || true
		die "nats-server exited at start (log above: .run/logs/nats-server.log)"
	fi
	sleep 0.2
done
die "nats-server did not answer within 20s (see .run/logs/nats-server.log)"
