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
nats_version="${NATS_SERVER_VERSION:-v2.12.15}" # as scripts/ensure-nats.sh
build="$repo_root/deploy/build"

say "building static binaries into deploy/build/"
bash scripts/build.sh deploy/build
(GOWORK=off CGO_ENABLED=0 GOBIN="$build" go install "github.com/nats-io/nats-server/v2@$nats_version")
# The images' HEALTHCHECK (standard library only; no module needed).
(cd deploy/healthcheck && GOWORK=off GO111MODULE=off CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$build/greenroom-healthcheck" main.go)

# image NAME BINARY...: builds greenroom/NAME from deploy/NAME/Dockerfile
# with a context holding only those binaries, so each upload to the engine
# is small.
image() {
	local name="$1" ctx log id binary
	shift
	ctx="$(mktemp -d "${TMPDIR:-/tmp}/greenroom-image.XXXXXX")"
	log="$ctx.log"
	for binary in "$@"; do
		cp "$build/$binary" "$ctx/"
	done
	cp "$repo_root/deploy/$name/Dockerfile" "$ctx/"
	if ! id="$(docker build --quiet --tag "greenroom/$name:$tag" "$ctx" 2>"$log")"; then
		cat "$log" >&2
		rm -rf "$ctx" "$log"
		die "docker build of greenroom/$name:$tag failed"
	fi
	rm -rf "$ctx" "$log"
	say "built greenroom/$name:$tag (${id#sha256:})"
}

for svc in "${services[@]}"; do
	image "$svc" "greenroom-$svc" greenroom-healthcheck
done
image cli greenroom
# The server's settings file (JetStream fsyncs every write: README.md,
# "Durability"), beside the binaries in the image's context.
cp "$repo_root/deploy/nats-server/nats-server.conf" "$build/"
image nats-server nats-server greenroom-healthcheck nats-server.conf
