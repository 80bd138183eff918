#!/usr/bin/env bash
# Builds the agent engine image (images/agent-engine), the machine of the
# local autoscaling provider: a Debian bookworm root file system made by
# debootstrap (minbase) with Debian's docker.io package (dockerd, containerd,
# runc, docker-proxy, docker-init) and iptables, imported into the engine,
# plus the Dockerfile's entrypoint on top. Nothing is pulled from a registry;
# the packages come from the Debian mirror.
#
# Nothing is done when the image carries the hash of this build's inputs
# (this script, the Dockerfile, the entrypoint) in its label
# greenroom.agent-image.inputs. The root file system is kept as its own image
# (<image>-rootfs:<hash of the debootstrap step>), so that a change to the
# Dockerfile or the entrypoint rebuilds in seconds; only a change to the
# debootstrap step (suite, packages, make_rootfs below) runs debootstrap again.
#
# Usage: scripts/build-agent-image.sh     (tag from $AGENT_IMAGE, default greenroom/agent-engine:latest;
#                                          mirror from $DEBIAN_MIRROR, default http://deb.debian.org/debian)
# Needs root or sudo for debootstrap (installed with apt-get when missing).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo_root/images/agent-engine"
image="${AGENT_IMAGE:-greenroom/agent-engine:latest}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
packages=docker.io,iptables,ca-certificates
inputs_label=greenroom.agent-image.inputs
rootfs_label=greenroom.agent-image.rootfs

start=$SECONDS
say() { printf 'build-agent-image: [%3ds] %s\n' "$((SECONDS - start))" "$*"; }
die() {
	echo "build-agent-image: $*" >&2
	exit 1
}
label_of() { # image label
	docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

inputs_hash="$(cd "$repo_root" && sha256sum scripts/build-agent-image.sh images/agent-engine/Dockerfile images/agent-engine/entrypoint.sh |
	sha256sum | cut -c1-64)"
if [ "$(label_of "$image" "$inputs_label")" = "$inputs_hash" ]; then
	echo "build-agent-image: $image is up to date (inputs ${inputs_hash:0:12})"
	exit 0
fi

# One build at a time on this machine (make test and make up may run it at
# once); the one that waited finds the image built.
exec 9>"${TMPDIR:-/tmp}/greenroom-agent-image.lock"
if ! flock -n 9; then
	echo "build-agent-image: another build of the agent image is running; waiting for it"
	flock 9
	if [ "$(label_of "$image" "$inputs_label")" = "$inputs_hash" ]; then
		echo "build-agent-image: $image is up to date (inputs ${inputs_hash:0:12}), built by the other run"
		exit 0
	fi
fi

sudo=()
if [ "$(id -u)" != 0 ]; then
	sudo=(sudo)
fi

work="$(mktemp -d "${TMPDIR:-/var/tmp}/greenroom-agent-image.XXXXXX")"
trap '"${sudo[@]}" rm -rf "$work"' EXIT

# make_rootfs DIR: the Debian root file system of the image, in DIR. Its
# text is part of the root file system's hash: edit it and the next run
# runs debootstrap again.
make_rootfs() {
	local dir="$1" log="$work/debootstrap.log" status
	set +e
	"${sudo[@]}" debootstrap --variant=minbase --include="$packages" "$suite" "$dir" "$mirror" 2>&1 | progress "$log"
	status=${PIPESTATUS[0]}
	set -e
	if [ "$status" != 0 ]; then
		cat "$log" >&2
		[ -f "$dir/debootstrap/debootstrap.log" ] && tail -50 "$dir/debootstrap/debootstrap.log" >&2
		die "debootstrap failed ($status)"
	fi
	local bin
	for bin in usr/sbin/dockerd usr/bin/containerd usr/sbin/runc usr/sbin/docker-proxy usr/bin/docker-init usr/sbin/iptables; do
		[ -e "$dir/$bin" ] || die "the root file system has no /$bin"
	done
	# What the engine never needs: the downloaded packages, the package
	# lists, documentation and translations.
	"${sudo[@]}" rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"* \
		"$dir/usr/share/doc" "$dir/usr/share/man" "$dir/usr/share/info" "$dir/usr/share/locale"
	# Docker supplies these at run time.
	"${sudo[@]}" rm -f "$dir/etc/resolv.conf" "$dir/etc/hostname"
	# Where the provider copies the engine's TLS material (here rather than
	# in a RUN step of the Dockerfile: a build container costs more than the
	# rest of the Dockerfile).
	"${sudo[@]}" install -d -m 0700 "$dir/etc/docker/tls"
}

# progress LOG: debootstrap prints a line per package and phase; show each
# phase once with a count every 25 packages, keep everything in LOG.
progress() {
	local log="$1" line phase last="" n=0
	while IFS= read -r line; do
		printf '%s\n' "$line" >>"$log"
		if [[ $line =~ ^I:\ (Retrieving|Validating|Extracting|Unpacking|Configuring)\ [a-z0-9] ]]; then
			phase="${BASH_REMATCH[1]}"
			# Each package is retrieved, then validated: one phase.
			[ "$phase" = Validating ] && continue
			if [ "$phase" != "$last" ]; then
				[ -n "$last" ] && say "  $last: $n packages"
				last="$phase" n=0
			fi
			n=$((n + 1))
			((n % 25 == 0)) && say "  $phase: $n packages..."
		elif [[ $line =~ ^I:\ (Retrieving|Checking|Valid|Found|Resolving|Chosen) ]]; then
			:
		else
			[ -n "$last" ] && say "  $last: $n packages"
			last="" n=0
			say "$line"
		fi
	done
	[ -n "$last" ] && say "  $last: $n packages"
	return 0
}

repo="${image%:*}"
[[ $repo == */* && ${image##*/} != *:* ]] && repo="$image" # no tag; a registry's port is not one
rootfs_hash="$( {
	echo "$suite $packages"
	declare -f make_rootfs
} | sha256sum | cut -c1-64)"
rootfs_image="$repo-rootfs:${rootfs_hash:0:12}"

if [ "$(label_of "$rootfs_image" "$rootfs_label")" = "$rootfs_hash" ]; then
	say "building $image (inputs ${inputs_hash:0:12}) on the existing root file system $rootfs_image"
else
	say "building $image (inputs ${inputs_hash:0:12}): debootstrap $suite (minbase + $packages) from $mirror"
	if ! command -v debootstrap >/dev/null || [ ! -e /usr/share/keyrings/debian-archive-keyring.gpg ]; then
		[ ${#sudo[@]} = 0 ] || command -v sudo >/dev/null || die "debootstrap needs root: run as root or install sudo"
		say "installing debootstrap and debian-archive-keyring (apt-get)"
		apt_log="$work/apt.log"
		install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap debian-archive-keyring)
		# A clean machine may have no package lists yet.
		if ! "${install[@]}" >"$apt_log" 2>&1 && ! { "${sudo[@]}" apt-get update -q && "${install[@]}"; } >>"$apt_log" 2>&1; then
			cat "$apt_log" >&2
			die "could not install debootstrap"
		fi
	fi
	make_rootfs "$work/rootfs"
	say "importing the root file system ($("${sudo[@]}" du -sh "$work/rootfs" | cut -f1)) as $rootfs_image"
	"${sudo[@]}" tar --numeric-owner --xattrs -C "$work/rootfs" -c . |
		docker import --change "LABEL $rootfs_label=$rootfs_hash" \
			--message "debootstrap --variant=minbase --include=$packages $suite" - "$rootfs_image" >/dev/null
	"${sudo[@]}" rm -rf "$work/rootfs"
fi

say "building $image from $src/Dockerfile"
previous="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
ctx="$work/context"
mkdir -p "$ctx"
cp "$src/Dockerfile" "$ctx/"
install -m 0755 "$src/entrypoint.sh" "$ctx/entrypoint.sh"
if ! image_id="$(docker build --quiet --build-arg "ROOTFS=$rootfs_image" \
	--label "$inputs_label=$inputs_hash" --tag "$image" "$ctx" 2>"$work/build.log")"; then
	cat "$work/build.log" >&2
	die "docker build of $image failed"
fi

# The image of earlier inputs, now untagged, and root file systems of
# earlier inputs; one still used by a container or an image stays.
if [ -n "$previous" ] && [ "$previous" != "$image_id" ] &&
	[ "$(docker image inspect --format '{{len .RepoTags}}' "$previous" 2>/dev/null)" = 0 ]; then
	docker image rm "$previous" >/dev/null 2>&1 || true
fi
docker image ls --format '{{.Repository}}:{{.Tag}}' "$repo-rootfs" | grep -vxF "$rootfs_image" |
	xargs -r docker image rm >/dev/null 2>&1 || true
say "built $image (${image_id#sha256:}) from $src"
