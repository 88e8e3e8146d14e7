#!/usr/bin/env bash
# Run a command as root inside a fresh private network namespace, so nothing it starts can
# reach or be reached from outside the machine:
#
#   scripts/netns.sh CMD [ARGS...]
#
# Inside: `lo` is up, and a veth pair (v0 <-> v1) carries the private address NETNS_ADDR
# (default 10.99.0.1/24). libwebrtc ignores loopback when it gathers candidates, so a LiveKit
# server and its clients need such an address to connect over WebRTC (see the README, "Live
# tests"). The namespace has no route out; it disappears with the command (the kernel removes
# the veth pair with it), and the command's exit status is returned. The address is exported to
# the command as NETNS_NODE_IP, and NETNS_INSIDE=1 tells it where it runs.
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: scripts/netns.sh CMD [ARGS...]" >&2
  exit 2
fi
if [ "${NETNS_INSIDE:-}" = "1" ]; then
  exec "$@" # already inside one: nothing to add
fi
if [ "$(id -u)" != "0" ]; then
  echo "scripts/netns.sh needs root (a private network namespace): run it with sudo" >&2
  exit 1
fi
for tool in unshare ip; do
  if ! command -v "$tool" >/dev/null; then
    echo "scripts/netns.sh needs $tool: apt-get install -y util-linux iproute2" >&2
    exit 1
  fi
done

addr="${NETNS_ADDR:-10.99.0.1/24}"
export NETNS_NODE_IP="${addr%/*}"
export NETNS_INSIDE=1
# --fork so the command is PID 1's child in the new namespace; --kill-child so an interrupted
# run leaves nothing behind. The namespace (and the veth pair in it) dies with its last process.
exec unshare --net --fork --kill-child -- bash -c '
  set -e
  ip link set lo up
  ip link add v0 type veth peer name v1
  ip addr add "$0" dev v0
  ip link set v0 up
  ip link set v1 up
  exec "$@"
' "$addr" "$@"
