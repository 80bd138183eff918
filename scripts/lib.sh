# Helpers shared by the scripts in this directory; source it, don't run it.
# shellcheck shell=bash
# The variables below are used by the scripts that source this file.
# shellcheck disable=SC2034

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# GREENROOM_RUN_DIR moves it (tests of these scripts).
run_dir="${GREENROOM_RUN_DIR:-$repo_root/.run}"
log_dir="$run_dir/logs"

# The Go toolchain every script builds and runs with: go.work's toolchain
# line (README.md, "Go version"), which a machine's own Go ignores
# (GOTOOLCHAIN=local in its go.env); the go command fetches that version
# through the module proxy once. An exported GOTOOLCHAIN wins.
GOTOOLCHAIN="${GOTOOLCHAIN:-$(awk '$1 == "toolchain" { print $2 }' "$repo_root/go.work")}"
export GOTOOLCHAIN

# The services, in start order, and the port of each one's HTTP server (the
# config service's is the admin API and UI, the gateway's the users'
# dashboard and sessions; the others serve /healthz, /readyz and /metrics).
services=(config assigner provisioner expiry gateway)
declare -A service_port=([config]=8080 [assigner]=8081 [provisioner]=8082 [expiry]=8083 [gateway]=8090)
# The variable of each service's HTTP address.
declare -A service_addr_env=([config]=GREENROOM_HTTP_ADDR [assigner]=GREENROOM_HTTP_ADDR [provisioner]=GREENROOM_HTTP_ADDR
	[expiry]=GREENROOM_HTTP_ADDR [gateway]=GREENROOM_GATEWAY_ADDR)

# The defaults every component agrees on (libs/settings). The local
# database's role has no well-known password: scripts/ensure-postgres.sh
# generates one and writes the whole URL to .run/database-url (mode 600).
default_database_url="postgres://greenroom@127.0.0.1:5432/greenroom?sslmode=disable"
database_url_file="$run_dir/database-url"

# local_database_url: the URL in .run/database-url (empty when missing).
local_database_url() {
	cat "$database_url_file" 2>/dev/null || true
}

# This deployment's identity (the deployment table, schemas/db/00002): every
# container its provisioner makes carries greenroom.deployment=<id>. `make
# up` keeps a copy in .run/deployment-id so that `make down` knows it even
# when the database does not answer.
deployment_id_file="$run_dir/deployment-id"

# deployment_id URL: prints this deployment's id, from the database of URL,
# else from .run/deployment-id; nothing when neither knows it.
deployment_id() {
	local id=""
	if [[ -n "$1" ]] && command -v psql >/dev/null 2>&1; then
		id="$(PGCONNECT_TIMEOUT=5 psql "$1" -XAtqc 'SELECT id FROM deployment' 2>/dev/null || true)"
	fi
	if [[ -z "$id" ]]; then
		id="$(cat "$deployment_id_file" 2>/dev/null || true)"
	fi
	if [[ "$id" =~ ^[0-9a-f-]{36}$ ]]; then
		printf '%s' "$id"
	fi
}
default_nats_url="nats://127.0.0.1:4222"

say() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*"; }
die() { printf '%s: error: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

# port_open HOST PORT: something accepts TCP connections there.
port_open() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# http_status HOST PORT PATH: prints the status code of GET PATH (nothing
# when nothing answers). Plain bash, so that no HTTP client is required.
http_status() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" "$2" "$0" >&3
		IFS=" " read -r _ code _ <&3 && printf "%s" "$code"
	' "$1" "$2" "$3" 2>/dev/null || true
}

# pid_alive PIDFILE NAME: the pid in PIDFILE runs a program whose command
# line contains NAME (guards against a recycled pid).
pid_alive() {
	local pid
	pid="$(cat "$1" 2>/dev/null)" || return 1
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# stop_pidfile PIDFILE NAME [GRACE]: stops the process gracefully
# (SIGTERM, up to GRACE seconds, 25 by default: a service stops within
# GREENROOM_SHUTDOWN_TIMEOUT, 20 s by default), then with SIGKILL, and
# removes the pid file.
stop_pidfile() {
	local file="$1" name="$2" grace="${3:-25}" pid i
	if [[ ! -e "$file" ]]; then
		return 0
	fi
	if ! pid_alive "$file" "$name"; then
		rm -f "$file"
		say "$name was not running (removed stale $(basename "$file"))"
		return 0
	fi
	pid="$(cat "$file")"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "$name (pid $pid) ignored SIGTERM for ${grace}s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 25; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
	else
		say "stopped $name (pid $pid)"
	fi
	rm -f "$file"
}

# as_root CMD...: runs CMD as root (directly, or through sudo).
as_root() {
	if [[ "$(id -u)" -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run: $* (run as root or install sudo)"
	fi
}

# background LOG PIDFILE CMD...: starts CMD detached from this shell (own
# session, no stdin, output appended to LOG) and writes its pid to PIDFILE.
background() {
	local log="$1" pidfile="$2"
	shift 2
	mkdir -p "$(dirname "$log")" "$(dirname "$pidfile")"
	# The inner shell records its own pid and then becomes CMD (exec), so the
	# pid file names CMD whether or not setsid had to fork.
	rm -f "$pidfile"
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid nohup bash -c 'echo "$$" >"$0"; exec "$@"' "$pidfile" "$@" >>"$log" 2>&1 </dev/null &
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -s "$pidfile" ]] && return 0
		sleep 0.1
	done
	die "could not start $1 (see $log)"
}

# Replicas (`make up ASSIGNERS=3 PROVISIONERS=2`, scripts/scale.sh). The
# services one scales by running more processes; config and gateway stay
# one process each on their published addresses (README.md, "Scaling").
scalable_services=(assigner provisioner expiry)
max_replicas=9
# Replica 1 of a service is .run/<svc>.pid, .run/logs/<svc>.log on the
# service's port; replica I > 1 is .run/<svc>-I.pid, .run/logs/<svc>-I.log on
# the service's port + 100 × (I − 1): assigner 8081, 8181, 8281, …,
# provisioner 8082, 8182, …, expiry 8083, 8183, … (at most 9 each).
# A provisioner that stops drains its container creations, each bounded by
# GREENROOM_READINESS_TIMEOUT (1m): its replicas get a shutdown timeout above
# that, GREENROOM_PROVISIONER_SHUTDOWN_TIMEOUT (90s), and that long plus 10 s
# before SIGKILL. With 20 s, creations still waiting for readiness were
# abandoned and their sessions failed provisioning_timeout 2 minutes later.
provisioner_shutdown_timeout="${GREENROOM_PROVISIONER_SHUTDOWN_TIMEOUT:-90s}"
# The environment the services were started with, for the replicas
# scripts/scale.sh adds later (mode 600: it holds the database URL and the
# admin token).
services_env_file="$run_dir/services.env"

# is_scalable SVC: SVC is one of scalable_services.
is_scalable() {
	local s
	for s in "${scalable_services[@]}"; do [[ "$s" == "$1" ]] && return 0; done
	return 1
}

# replica_name SVC I: "assigner" for replica 1, "assigner-2" for replica 2.
replica_name() {
	if (($2 == 1)); then printf '%s' "$1"; else printf '%s-%s' "$1" "$2"; fi
}
replica_port() { printf '%s' "$((${service_port[$1]} + 100 * ($2 - 1)))"; }
replica_pidfile() { printf '%s/%s.pid' "$run_dir" "$(replica_name "$1" "$2")"; }
replica_log() { printf '%s/%s.log' "$log_dir" "$(replica_name "$1" "$2")"; }

# replica_indexes SVC: the indexes of SVC's replicas that have a pid file
# (running or stale), in ascending order.
replica_indexes() {
	local f n
	for f in "$run_dir/$1.pid" "$run_dir/$1"-*.pid; do
		[[ -e "$f" ]] || continue
		n="${f##*/}"
		n="${n%.pid}"
		if [[ "$n" == "$1" ]]; then
			echo 1
		elif [[ "${n#"$1"-}" =~ ^[0-9]+$ ]]; then
			echo "${n#"$1"-}"
		fi
	done | sort -n
}

# start_replica SVC I [ADDR]: starts replica I of bin/greenroom-SVC in the
# background on ADDR (default 127.0.0.1:<replica_port>), with this shell's
# environment.
start_replica() {
	local svc="$1" i="$2" addr="${3:-}" port
	port="$(replica_port "$svc" "$i")"
	[[ -n "$addr" ]] || addr="127.0.0.1:$port"
	port="${addr##*:}"
	if port_open 127.0.0.1 "$port"; then
		die "port $port ($(replica_name "$svc" "$i")) is taken by another process; stop it first"
	fi
	(
		export "${service_addr_env[$svc]}=$addr"
		# On the local nats-server of make up, each service signs in as
		# its own NATS user (.run/nats-users/<svc>: scripts/up.sh).
		if [[ -s "$run_dir/nats-url" && -s "$run_dir/nats-users/$svc" &&
			"${GREENROOM_NATS_URL:-}" == "$(cat "$run_dir/nats-url")" ]]; then
			export GREENROOM_NATS_URL="nats://$svc:$(cat "$run_dir/nats-users/$svc")@127.0.0.1:4222"
		fi
		if [[ "$svc" == provisioner ]]; then
			export GREENROOM_SHUTDOWN_TIMEOUT="$provisioner_shutdown_timeout"
		fi
		background "$(replica_log "$svc" "$i")" "$(replica_pidfile "$svc" "$i")" "$repo_root/bin/greenroom-$svc"
	)
}

# stop_replica SVC I: stops replica I (SIGTERM: it drains; see stop_pidfile).
stop_replica() {
	local grace=25 t="$provisioner_shutdown_timeout"
	if [[ "$1" == provisioner ]]; then
		if [[ "$t" =~ ^([0-9]+)s$ ]]; then
			grace=$((BASH_REMATCH[1] + 10))
		elif [[ "$t" =~ ^([0-9]+)m$ ]]; then
			grace=$((BASH_REMATCH[1] * 60 + 10))
		else
			grace=190 # another form of duration: a generous bound
		fi
	fi
	stop_pidfile "$(replica_pidfile "$1" "$2")" "greenroom-$1" "$grace"
}

# wait_replica_ready SVC I HOST PORT: waits up to 60 s for /readyz.
wait_replica_ready() {
	local svc="$1" i="$2" host="$3" port="$4" name log n
	name="$(replica_name "$svc" "$i")"
	log="$(replica_log "$svc" "$i")"
	for ((n = 0; ; n++)); do
		[[ "$(http_status "$host" "$port" /readyz)" == 200 ]] && break
		if ! pid_alive "$(replica_pidfile "$svc" "$i")" "greenroom-$svc"; then
			tail -n 30 "$log" >&2 || true
			die "greenroom-$name exited (log above: ${log#"$repo_root"/})"
		fi
		if ((n >= 300)); then
			tail -n 30 "$log" >&2 || true
			die "greenroom-$name not ready after 60s (log above: ${log#"$repo_root"/})"
		fi
		sleep 0.2
	done
}

# replica_count_arg NAME VALUE: VALUE is a replica count (1 to max_replicas).
replica_count_arg() {
	[[ "$2" =~ ^[0-9]+$ ]] && (($2 >= 1 && $2 <= max_replicas)) ||
		die "$1=$2: want a number of replicas from 1 to $max_replicas"
}
