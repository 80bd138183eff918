#!/usr/bin/env bash
# `make down`: stops what `make up` started — the five services, every
# replica of them (make up ASSIGNERS=3, scripts/scale.sh: .run/<svc>-<i>.pid),
# and the nats-server started by scripts/ensure-nats.sh (by their pid files
# in .run/, SIGTERM first, SIGKILL after 25 s, a provisioner 100 s: see
# stop_replica in lib.sh) — and removes the containers this
# deployment made: labelled greenroom.managed=true and
# greenroom.deployment=<this deployment's id> (read from its database, else
# from .run/deployment-id, which make up writes), as the provisioner's
# orphan collector identifies them. Other deployments' containers on the
# same engine, and those of tests, are left alone. PostgreSQL is left
# running, and the data in PostgreSQL and .run/nats is kept for the next
# `make up`.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Stop taking requests first (the gateway, then the config service); the
# provisioner last, so nothing it is doing is left half-done by a vanished
# dependency.
for svc in gateway config assigner expiry provisioner; do
	# The replicas of a service at once (each drains on SIGTERM).
	pids=()
	for i in $(replica_indexes "$svc"); do
		stop_replica "$svc" "$i" &
		pids+=("$!")
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || true
	done
done
stop_pidfile "$run_dir/nats-server.pid" nats-server
# The services' saved environment (scripts/scale.sh's); make up writes it again.
rm -f "$services_env_file"

deployment="$(deployment_id "${GREENROOM_DATABASE_URL:-$(local_database_url)}")"
if [[ -z "$deployment" ]]; then
	say "this deployment's id is unknown (no database answers, no .run/deployment-id): no containers removed"
elif ! command -v docker >/dev/null 2>&1; then
	say "docker CLI not found; no containers removed"
elif ! docker info >/dev/null 2>&1; then
	say "Docker Engine does not answer; no containers removed"
else
	filters=(--filter label=greenroom.managed=true --filter "label=greenroom.deployment=$deployment")
	count="$(docker ps -aq "${filters[@]}" | wc -l)"
	docker ps -aq "${filters[@]}" | xargs -r docker rm -f >/dev/null
	say "removed $count container(s) of this deployment (labels greenroom.managed=true, greenroom.deployment=$deployment)"
fi

version="$(pg_lsclusters --no-header 2>/dev/null | awk '$2 == "main" && $4 ~ /^online/ { print $1; exit }' || true)"
if [[ -n "$version" ]]; then
	say "PostgreSQL $version is left running (stop it with: pg_ctlcluster $version main stop)"
else
	say "PostgreSQL is left as it is"
fi
say "Greenroom is down"
