#!/usr/bin/env bash
# Builds the four service binaries (greenroom-config, greenroom-assigner,
# greenroom-provisioner, greenroom-expiry), the greenroom CLI and
# greenroom-bench as static binaries (CGO_ENABLED=0), so the same files run
# on the host and in the FROM-scratch images of deploy/.
# Usage: scripts/build.sh [OUTDIR]      (default: bin)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

out="${1:-bin}"
[[ "$out" = /* ]] || out="$repo_root/$out"
mkdir -p "$out"
cd "$repo_root"
for svc in "${services[@]}"; do
	CGO_ENABLED=0 go build -trimpath -o "$out/greenroom-$svc" "./services/$svc"
done
CGO_ENABLED=0 go build -trimpath -o "$out/greenroom" ./cmd/greenroom
# The benchmarks are a command of their own: they link every service and an
# embedded nats-server, which the operator CLI does not (greenroom bench
# runs this one).
CGO_ENABLED=0 go build -trimpath -o "$out/greenroom-bench" ./bench/cmd/greenroom-bench
say "built greenroom-{$(IFS=,; echo "${services[*]}")}, greenroom and greenroom-bench into ${out#"$repo_root"/}/"
