#!/usr/bin/env bash
# Builds the demo workspace image (images/demo-workspace) from a static Go
# binary on `scratch`, so nothing is pulled from a registry.
# Usage: scripts/build-demo-image.sh          (tag from $DEMO_IMAGE, default greenroom/demo-workspace:latest)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo_root/images/demo-workspace"
image="${DEMO_IMAGE:-greenroom/demo-workspace:latest}"

# A temporary context holding only the Dockerfile and the binary keeps the
# upload to the engine tiny and the build independent of the source tree.
ctx="$(mktemp -d "${TMPDIR:-/tmp}/greenroom-demo-image.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT

# GOWORK=off: the module has no dependencies, so the build need not depend on
# the state of every other module listed in go.work.
(cd "$src" && GOWORK=off CGO_ENABLED=0 GOOS=linux \
	go build -trimpath -ldflags='-s -w' -o "$ctx/demo-workspace" .)
cp "$src/Dockerfile" "$src/passwd" "$src/group" "$ctx/"

# Always build: the engine's layer cache makes an unchanged rebuild cheap.
# The engine's chatter (e.g. the legacy-builder notice) is shown only on failure.
log="$(mktemp "${TMPDIR:-/tmp}/greenroom-demo-image-log.XXXXXX")"
trap 'rm -rf "$ctx" "$log"' EXIT
if ! image_id="$(docker build --quiet --tag "$image" "$ctx" 2>"$log")"; then
	cat "$log" >&2
	echo "build-demo-image: docker build of $image failed" >&2
	exit 1
fi
echo "built $image (${image_id#sha256:}) from $src"
