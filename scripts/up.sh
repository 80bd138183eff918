#!/usr/bin/env bash
# `make up`: a complete local Greenroom on this machine.
#   PostgreSQL (installed and started if missing) → nats-server with JetStream
#   → demo workspace image → the five services and the CLI built into bin/
#   → migrations → the services started in the background (.run/<svc>.pid,
#   .run/logs/<svc>.log) → the demo configuration → 3 staged sessions.
# Prints the admin URL and token, the users' dashboard URL with the demo
# users' passwords, and a command to request a session.
#
# Running it again is harmless: it rebuilds and restarts the services and
# leaves the configuration and data as they are. `make down` stops it all.
#
# Environment: GREENROOM_ADMIN_TOKEN (used as is when given; otherwise the
# one in .run/admin-token, or a new one), GREENROOM_DATABASE_URL (else the
# local one of .run/database-url, password included),
# GREENROOM_NATS_URL, GREENROOM_LOG_LEVEL, DEMO_STAGED (default 3),
# ASSIGNERS, PROVISIONERS, EXPIRIES (replicas of each, default 1, at most 9:
# `make up ASSIGNERS=3 PROVISIONERS=2`; replica I > 1 serves /metrics on the
# service's port + 100 × (I − 1), see scripts/lib.sh; scripts/scale.sh
# changes the count of a running deployment).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo_root"

staged="${DEMO_STAGED:-3}"
declare -A replicas=([config]=1 [gateway]=1
	[assigner]="${ASSIGNERS:-1}" [provisioner]="${PROVISIONERS:-1}" [expiry]="${EXPIRIES:-1}")
replica_count_arg ASSIGNERS "${replicas[assigner]}"
replica_count_arg PROVISIONERS "${replicas[provisioner]}"
replica_count_arg EXPIRIES "${replicas[expiry]}"
export GREENROOM_NATS_URL="${GREENROOM_NATS_URL:-$default_nats_url}"
export GREENROOM_LOG_LEVEL="${GREENROOM_LOG_LEVEL:-info}"
# GREENROOM_HTTP_ADDR is the config service's address (admin API and UI);
# the other services keep their own ports beside it.
config_addr="${GREENROOM_HTTP_ADDR:-127.0.0.1:${service_port[config]}}"
unset GREENROOM_HTTP_ADDR
service_port[config]="${config_addr##*:}"
config_host="${config_addr%:*}"
[[ "$config_host" == "0.0.0.0" || -z "$config_host" ]] && config_host=127.0.0.1
export GREENROOM_API_URL="http://$config_host:${service_port[config]}"

say "1/8 PostgreSQL"
bash scripts/ensure-postgres.sh
# The local database's URL holds the role's generated password
# (.run/database-url, written by ensure-postgres.sh).
export GREENROOM_DATABASE_URL="${GREENROOM_DATABASE_URL:-$(local_database_url)}"

say "2/8 NATS JetStream"
if [[ "$GREENROOM_NATS_URL" == "$default_nats_url" ]]; then
	# One NATS user per service (and admin for the CLI), each allowed its
	# own subjects only: passwords in .run/nats-users (kept across runs),
	# the server's configuration beside them (README.md, "NATS users").
	# NATS_REQUESTERS="billing reports" adds requesting services' users.
	requester_flags=()
	for r in ${NATS_REQUESTERS:-}; do requester_flags+=(--requester "$r"); done
	go run ./cmd/greenroom nats-users --dir "$run_dir/nats-users" "${requester_flags[@]}"
	bash scripts/ensure-nats.sh
	GREENROOM_NATS_URL="nats://admin:$(cat "$run_dir/nats-users/admin")@127.0.0.1:4222"
	(umask 077 && printf '%s\n' "$GREENROOM_NATS_URL" >"$run_dir/nats-url")
	say "NATS users: ${services[*]} and admin (the CLI's: .run/nats-url)"
else
	say "GREENROOM_NATS_URL=$GREENROOM_NATS_URL: using that server"
fi

say "3/8 demo workspace image"
bash scripts/build-demo-image.sh

say "4/8 building the services and the CLI into bin/"
bash scripts/build.sh bin

say "5/8 migrating the database and setting the stream's limits"
bin/greenroom migrate

mkdir -p "$run_dir" "$log_dir"
# This deployment's id, for make down (which removes only its containers).
deployment="$(deployment_id "$GREENROOM_DATABASE_URL")"
[[ -n "$deployment" ]] || die "could not read this deployment's id (SELECT id FROM deployment)"
printf '%s\n' "$deployment" >"$deployment_id_file"
token_file="$run_dir/admin-token"
if [[ -n "${GREENROOM_ADMIN_TOKEN:-}" ]]; then
	say "using the admin token from GREENROOM_ADMIN_TOKEN"
elif [[ -s "$token_file" ]]; then
	GREENROOM_ADMIN_TOKEN="$(cat "$token_file")"
	say "using the admin token in .run/admin-token"
else
	GREENROOM_ADMIN_TOKEN="$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
	say "generated a new admin token into .run/admin-token"
fi
export GREENROOM_ADMIN_TOKEN
(umask 077 && printf '%s\n' "$GREENROOM_ADMIN_TOKEN" >"$token_file")

say "6/8 starting the services"
# What every replica is started with, also for those scripts/scale.sh adds
# later (each one's HTTP address is set per replica).
(umask 077 && export -p | grep -E '^declare -x GREENROOM_' |
	grep -vE '^declare -x (GREENROOM_HTTP_ADDR|GREENROOM_GATEWAY_ADDR)=' >"$services_env_file")
# replica_host SVC I, replica_addr SVC I: where replica I of SVC answers.
replica_host() { if [[ "$1" == config ]]; then printf '%s' "$config_host"; else printf 127.0.0.1; fi; }
replica_addr() {
	if [[ "$1" == config ]]; then printf '%s' "$config_addr"; else printf '127.0.0.1:%s' "$(replica_port "$1" "$2")"; fi
}
for svc in "${services[@]}"; do
	for i in $(replica_indexes "$svc"); do
		if pid_alive "$(replica_pidfile "$svc" "$i")" "greenroom-$svc"; then
			say "restarting greenroom-$(replica_name "$svc" "$i")"
		fi
		stop_replica "$svc" "$i"
	done
	for ((i = 1; i <= replicas[$svc]; i++)); do
		start_replica "$svc" "$i" "$(replica_addr "$svc" "$i")"
		say "started greenroom-$(replica_name "$svc" "$i") (pid $(cat "$(replica_pidfile "$svc" "$i")"), http://$(replica_addr "$svc" "$i"), log .run/logs/$(replica_name "$svc" "$i").log)"
	done
done

say "7/8 waiting for each service's /readyz"
for svc in "${services[@]}"; do
	for ((i = 1; i <= replicas[$svc]; i++)); do
		addr="$(replica_addr "$svc" "$i")"
		wait_replica_ready "$svc" "$i" "$(replica_host "$svc" "$i")" "${addr##*:}"
		say "greenroom-$(replica_name "$svc" "$i") ready"
	done
done

say "8/8 loading the demo configuration and waiting for $staged staged sessions"
# The demo users' passwords: kept in .run/demo-passwords (mode 600), made
# once, so that running make up again keeps them.
passwords_file="$run_dir/demo-passwords"
if [[ ! -s "$passwords_file" ]]; then
	(umask 077 && for u in alice bob; do
		printf '%s=%s\n' "$u" "$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')"
	done >"$passwords_file")
fi
# deploy/demo/greenroom.yaml reads them as DEMO_PASSWORD_<USER>, with
# DEMO_STAGED and DEMO_AUTH_ADDRESS (the zones' upstream_auth_address: the
# config service, where the gateway checks sign-ins).
while IFS='=' read -r user password; do
	if [[ -n "$user" ]]; then export "DEMO_PASSWORD_${user^^}=$password"; fi
done <"$passwords_file"
DEMO_STAGED="$staged" DEMO_AUTH_ADDRESS="${GREENROOM_API_URL#http://}" \
	bin/greenroom apply -f deploy/demo/greenroom.yaml
bin/greenroom demo wait --staged "$staged" --timeout 120s

cat <<EOF

Greenroom is up.
  admin console     $GREENROOM_API_URL/   (sign in with the admin token; Staging, Zones, Infrastructure → Pools, Sessions, …)
  admin API         $GREENROOM_API_URL/api/v1/   (schemas/api/openapi.yaml; live events: /api/v1/events)
  admin token       $GREENROOM_ADMIN_TOKEN   (also in .run/admin-token)
  user dashboard    http://greenroom.localhost:${service_port[gateway]}/   (the gateway; sessions open at /session/<id>/)
  demo users        $(tr '\n' ' ' <"$passwords_file" | sed 's/=/ password /g; s/ $//')   (also in .run/demo-passwords)
  logs              .run/logs/
  replicas          $(for svc in "${scalable_services[@]}"; do
		printf '%s ×%s (/metrics on' "$svc" "${replicas[$svc]}"
		for ((i = 1; i <= replicas[$svc]; i++)); do printf ' %s' "$(replica_port "$svc" "$i")"; done
		printf ')  '
	done)  (make scale SERVICE=assigner N=3)

Request a session (served from the staged pool in milliseconds):
  bin/greenroom request --user alice --workspace demo --zone zone-a

List sessions (staged ones have no user):  bin/greenroom sessions
Audit log (what happened, and verified):   bin/greenroom audit replay --since 10m; bin/greenroom audit verify
Stop everything:                           make down
EOF
