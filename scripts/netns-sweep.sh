#!/usr/bin/env bash
# Removes what the network-namespace test harness (test/harness/netns.mjs) left behind after a hard
# kill that also took its watchdog (e.g. the whole cgroup / container was killed):
#   - every network namespace whose name starts with PREFIX (default "gwt"): its processes are
#     SIGKILLed (`ip netns pids`), then the namespace is deleted;
#   - temp dirs "${TMPDIR:-/tmp}/PREFIX*-files" created by Topology.tmpDir().
#
# Usage: scripts/netns-sweep.sh [-n|--dry-run] [PREFIX]
#   PREFIX must start with "gwt" (the harness's prefix root), e.g. "gwt" (all runs) or a single
#   run's prefix such as "gwt4y1laj-". Nothing else is ever touched.
#   Sweeping "gwt" while tests are running destroys their topologies too.
set -euo pipefail

dry=0
prefix=gwt
for arg in "$@"; do
  case "$arg" in
    -n|--dry-run) dry=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "netns-sweep: unknown option $arg" >&2; exit 2 ;;
    *) prefix=$arg ;;
  esac
done

if [[ ! "$prefix" =~ ^gwt[a-z0-9]*-?$ ]]; then
  echo "netns-sweep: refusing prefix '$prefix': it must start with 'gwt' (then [a-z0-9]*, optional trailing '-')" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "netns-sweep: must run as root" >&2
  exit 1
fi

run() {
  if [ "$dry" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

removed=0
failed=0
for round in 1 2 3; do
  mapfile -t names < <(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}" || true)
  [ "${#names[@]}" -eq 0 ] && break
  for ns in "${names[@]}"; do
    [[ "$ns" == "$prefix"* ]] || continue # belt and braces: literal prefix match
    for _ in 1 2 3; do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -z "$pids" ] && break
      if [ "$dry" = 1 ]; then echo "would kill -9 (in $ns): $pids"; break; fi
      echo "$pids" | xargs -r kill -9 2>/dev/null || true
      sleep 0.1
    done
    if run ip netns del "$ns"; then
      [ "$dry" = 1 ] || { echo "deleted namespace $ns"; removed=$((removed + 1)); }
    else
      [ "$round" = 3 ] && { echo "netns-sweep: could not delete $ns" >&2; failed=$((failed + 1)); }
    fi
  done
  [ "$dry" = 1 ] && break
  sleep 0.2
done

tmp=${TMPDIR:-/tmp}
shopt -s nullglob
for d in "$tmp/$prefix"*files; do
  base=$(basename "$d")
  [[ "$base" =~ ^gwt[a-z0-9]+-files$ && "$base" == "$prefix"* ]] || continue
  [ -d "$d" ] && [ ! -L "$d" ] || continue
  run rm -rf -- "$d"
  [ "$dry" = 1 ] || echo "removed $d"
done

if [ "$dry" = 1 ]; then
  echo "netns-sweep: dry run, nothing changed"
else
  echo "netns-sweep: prefix '$prefix': $removed namespace(s) removed, $failed failure(s)"
fi
[ "$failed" -eq 0 ]
