#!/usr/bin/env bash
# `make scale SERVICE=assigner N=3`: adds or removes replicas of one service
# of a running `make up` deployment, under load, losing nothing.
#   scripts/scale.sh SERVICE N      SERVICE: assigner, provisioner or expiry; N: 0 to 9
#   scripts/scale.sh                prints every replica (pid, /metrics address)
#
# Replicas 1..N run afterwards: missing ones are started (bin/greenroom-SERVICE,
# with the environment make up saved in .run/services.env, each on its own
# port: the service's port + 100 × (I − 1)) and waited for (/readyz); those
# above N are stopped from the highest down with SIGTERM, which drains: a
# replica finishes what it is doing within GREENROOM_SHUTDOWN_TIMEOUT and
# acknowledges nothing it did not do, so its unacknowledged messages go to
# the remaining replicas of the same durable consumer. With N=0 requests
# wait in the stream until a replica is back (GREENROOM_REQUEST_MAX_AGE).
# make up ASSIGNERS=… PROVISIONERS=… EXPIRIES=… starts with other counts.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo_root"

# list: every replica of every service with a pid file.
list() {
	local svc i pidfile state
	for svc in "${services[@]}"; do
		for i in $(replica_indexes "$svc"); do
			pidfile="$(replica_pidfile "$svc" "$i")"
			state="not running (stale pid file)"
			if pid_alive "$pidfile" "greenroom-$svc"; then
				state="pid $(cat "$pidfile")"
			fi
			if is_scalable "$svc"; then
				printf '  %-14s %-28s http://127.0.0.1:%s/metrics\n' "$(replica_name "$svc" "$i")" "$state" "$(replica_port "$svc" "$i")"
			else
				printf '  %-14s %s\n' "$(replica_name "$svc" "$i")" "$state"
			fi
		done
	done
}

if (($# == 0)); then
	list
	exit 0
fi
(($# == 2)) || die "usage: scripts/scale.sh SERVICE N (make scale SERVICE=assigner N=3)"
svc="$1" want="$2"
is_scalable "$svc" ||
	die "SERVICE=$svc: scalable are ${scalable_services[*]} (config and gateway keep their published addresses; README.md, Scaling)"
[[ "$want" =~ ^[0-9]+$ ]] && ((want <= max_replicas)) || die "N=$want: want 0 to $max_replicas replicas"
[[ -x "bin/greenroom-$svc" ]] || die "bin/greenroom-$svc is missing: run make up first"
[[ -s "$services_env_file" ]] || die "${services_env_file#"$repo_root"/} is missing: run make up first"
# shellcheck source=/dev/null
source "$services_env_file"

# Stop those above N, highest first (stale pid files are removed on the way).
mapfile -t have < <(replica_indexes "$svc" | sort -rn)
for i in "${have[@]}"; do
	if ((i > want)); then
		stop_replica "$svc" "$i"
	fi
done
# Start the missing ones, then wait for each.
started=()
for ((i = 1; i <= want; i++)); do
	if ! pid_alive "$(replica_pidfile "$svc" "$i")" "greenroom-$svc"; then
		start_replica "$svc" "$i"
		started+=("$i")
	fi
done
for i in "${started[@]}"; do
	wait_replica_ready "$svc" "$i" 127.0.0.1 "$(replica_port "$svc" "$i")"
	say "started greenroom-$(replica_name "$svc" "$i") (pid $(cat "$(replica_pidfile "$svc" "$i")"), http://127.0.0.1:$(replica_port "$svc" "$i"), log .run/logs/$(replica_name "$svc" "$i").log)"
done
say "$svc: $want replica(s)"
list
