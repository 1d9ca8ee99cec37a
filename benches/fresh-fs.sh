#!/usr/bin/env bash
# Runs a benchmark with its output folders and TMPDIR on a file system made for it, so that what
# the machine deleted before does not weigh on the figures (on ext4 without a journal, a file made
# soon after many were deleted costs a lookup for each of them; see benches/ablate.rs).
#
# Usage (as root: it makes a loop device and mounts it):
#   benches/fresh-fs.sh [--journal] [--size 4G] [--as USER] -- COMMAND [ARGS...]
# e.g. benches/fresh-fs.sh -- cargo bench --bench ablate -- workload
#   --journal  an ext4 with a journal (default: without one, as this project's machines' root)
#   --as USER  runs COMMAND as USER (e.g. nobody), owner of the file system: an unprivileged user
#              starts confined commands another way than root (clone into user namespaces), so its
#              figures differ; give a built benchmark binary, not cargo, as COMMAND
# The image lives in a temporary folder and is unmounted and removed at the end.
set -euo pipefail

journal=0 size=4G user=
while [ $# -gt 0 ]; do
  case "$1" in
    --journal) journal=1 ;;
    --size) size="$2"; shift ;;
    --as) user="$2"; shift ;;
    --) shift; break ;;
    *) echo "unknown argument: $1 (see the head of $0)" >&2; exit 2 ;;
  esac
  shift
done
[ $# -gt 0 ] || { echo "no command given (see the head of $0)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (a loop device and a mount)" >&2; exit 2; }

work="$(mktemp -d)"
mnt="$work/mnt"
cleanup() {
  umount "$mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

truncate -s "$size" "$work/fs.img"
if [ "$journal" = 1 ]; then
  mkfs.ext4 -q -F "$work/fs.img"
else
  mkfs.ext4 -q -F -O ^has_journal "$work/fs.img"
fi
mkdir -p "$mnt"
mount -o loop "$work/fs.img" "$mnt"
mkdir -p "$mnt/tmp"

if [ -n "$user" ]; then
  uid="$(id -u "$user")" gid="$(id -g "$user")"
  chmod 755 "$work"
  chown -R "$uid:$gid" "$mnt"
  NLAH_BENCH_DIR="$mnt" TMPDIR="$mnt/tmp" HOME="$mnt" \
    setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
else
  NLAH_BENCH_DIR="$mnt" TMPDIR="$mnt/tmp" "$@"
fi
