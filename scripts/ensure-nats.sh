#!/usr/bin/env bash
# Makes sure a nats-server with JetStream answers on 127.0.0.1:4222. Builds
# bin/nats-server from its Go module if missing (no binary download), and
# starts it in the background with its store in .run/nats, its log in
# .run/logs/nats-server.log and its pid in .run/nats-server.pid. If
# something already answers on 4222 it is used as is.
#
# Idempotent: run it as often as you like. scripts/down.sh stops it.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

version="${NATS_SERVER_VERSION:-v2.12.3}"
server="$repo_root/bin/nats-server"
pidfile="$run_dir/nats-server.pid"
host=127.0.0.1
port=4222
monitor=8222

jetstream_ok() { [[ "$(http_status "$host" "$monitor" '/healthz?js-enabled-only=true')" == 200 ]]; }

if port_open "$host" "$port"; then
	if pid_alive "$pidfile" nats-server; then
		say "nats-server already running (pid $(cat "$pidfile")) on $host:$port"
	else
		say "something already answers on $host:$port; using it"
	fi
	if ! jetstream_ok; then
		say "warning: cannot confirm JetStream on $host:$monitor/healthz; Greenroom needs a server started with -js"
	fi
	exit 0
fi

if [[ ! -x "$server" ]]; then
	say "building nats-server $version into bin/ (go install; takes a minute the first time)"
	(cd "$repo_root" && GOWORK=off CGO_ENABLED=0 GOBIN="$repo_root/bin" \
		go install "github.com/nats-io/nats-server/v2@$version")
fi

say "starting nats-server with JetStream on $host:$port (monitoring $host:$monitor, store .run/nats)"
mkdir -p "$run_dir/nats" "$log_dir"
background "$log_dir/nats-server.log" "$pidfile" \
	"$server" -js -sd "$run_dir/nats" -a "$host" -p "$port" -m "$monitor"

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
