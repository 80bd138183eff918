#!/usr/bin/env bash
# `make images`: the container images of docker-compose.yml, built from
# static binaries compiled on this machine (deploy/build/) on `scratch`, so
# no image is pulled from a registry:
#   greenroom/{config,assigner,provisioner,expiry,gateway,cli,nats-server}:$TAG
# Usage: scripts/build-images.sh        (TAG from GREENROOM_IMAGE_TAG, default latest)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$repo_root"

tag="${GREENROOM_IMAGE_TAG:-latest}"
nats_version="${NATS_SERVER_VERSION:-v2.12.3}"
build="$repo_root/deploy/build"

say "building static binaries into deploy/build/"
bash scripts/build.sh deploy/build
(GOWORK=off CGO_ENABLED=0 GOBIN="$build" go install "github.com/nats-io/nats-server/v2@$nats_version")

# image NAME BINARY: builds greenroom/NAME from deploy/NAME/Dockerfile with
# a context holding only that binary, so each upload to the engine is small.
image() {
	local name="$1" binary="$2" ctx log id
	ctx="$(mktemp -d "${TMPDIR:-/tmp}/greenroom-image.XXXXXX")"
	log="$ctx.log"
	cp "$build/$binary" "$repo_root/deploy/$name/Dockerfile" "$ctx/"
	if ! id="$(docker build --quiet --tag "greenroom/$name:$tag" "$ctx" 2>"$log")"; then
		cat "$log" >&2
		rm -rf "$ctx" "$log"
		die "docker build of greenroom/$name:$tag failed"
	fi
	rm -rf "$ctx" "$log"
	say "built greenroom/$name:$tag (${id#sha256:})"
}

for svc in "${services[@]}"; do
	image "$svc" "greenroom-$svc"
done
image cli greenroom
image nats-server nats-server
