#!/bin/sh
# Starts dockerd inside a container given every capability (the agent
# engine; see images/agent-engine/README.md), with what
# a nested engine needs; its arguments are passed on to dockerd (the
# provider gives the --host and --tls* flags).
#
# AGENT_STORAGE_DRIVER: the storage driver (default: overlay2 when an overlay
# mount works in /var/lib/docker, vfs otherwise).
set -eu

say() { echo "agent-engine: $*" >&2; }

# A privileged container has /sys and the cgroup file systems read-write; a
# container given every capability instead (the provider's way, which works
# on hosts whose bounding set lacks one, as privileged does not) has them
# read-only: make them writable, since the engine makes cgroups for its
# containers (under this container's own, in a private cgroup namespace).
if grep -q ' /sys ro,' /proc/self/mountinfo; then
	mount -o remount,rw /sys
fi
awk '$5 ~ "^/sys/fs/cgroup" && $6 ~ "^ro," { print $5 }' /proc/self/mountinfo | while read -r m; do
	mount -o remount,bind,rw "$m" || say "could not make $m writable"
done

# cgroup v2: a process may not sit in a cgroup whose subtree delegates
# controllers, so move everything here into a child cgroup first and then
# enable every controller for the engine's containers (as moby's hack/dind).
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	mkdir -p /sys/fs/cgroup/init
	xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || :
	sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers \
		>/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || say "could not delegate cgroup v2 controllers"
fi

# The engine's own pid file, socket and containerd state; left over from a
# previous run when the container is restarted.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid

driver="${AGENT_STORAGE_DRIVER:-}"
if [ -z "$driver" ]; then
	probe=/var/lib/docker/.overlay-probe
	rm -rf "$probe"
	mkdir -p "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
	if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" 2>/dev/null; then
		umount "$probe/merged"
		driver=overlay2
	else
		driver=vfs
		say "overlay mounts fail in /var/lib/docker ($(stat -f -c %T /var/lib/docker)): using the vfs storage driver (slow, every layer copied)"
	fi
	rm -rf "$probe"
fi

# The bridge of the engine's containers gets the MTU of the container's own
# interface, so that nothing is fragmented on the way out.
mtu="$(cat /sys/class/net/eth0/mtu 2>/dev/null || echo 1500)"

say "starting dockerd (storage driver $driver, mtu $mtu)"
exec /usr/sbin/dockerd --storage-driver="$driver" --mtu="$mtu" "$@"
