#!/usr/bin/env bash
# Removes what network-namespace tests left behind after a hard kill that also took the harness's
# watchdog (e.g. the whole cgroup / container / CI job was killed):
#   - network namespaces whose name starts with PREFIX (default "gwt"): their processes are
#     SIGKILLed (`ip netns pids`), then the namespace is deleted;
#   - temp dirs "${TMPDIR:-/tmp}/<run prefix>files" created by Topology.tmpDir().
# Namespaces of runs that are still alive are left alone (unless --force), so this is safe to run
# while other test runs are active. A run counts as alive when
#   - harness names "gwt<pid base36><3 chars>-...": its watchdog process is alive, or the process
#     with that pid exists;
#   - other "gwt...<digits>" names (e.g. gwtcap<pid>): the process with pid <digits> exists.
#
# Usage: scripts/netns-sweep.sh [-n|--dry-run] [-f|--force] [PREFIX]
#   PREFIX must start with "gwt" (the harness's prefix root), e.g. "gwt" (default) or one run's
#   prefix such as "gwt4y1laj-". Nothing else is ever touched.
set -euo pipefail

dry=0
force=0
prefix=gwt
for arg in "$@"; do
  case "$arg" in
    -n|--dry-run) dry=1 ;;
    -f|--force) force=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
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

# Prints why the run owning namespace (or temp dir) name $1 is alive; fails if it is not.
owner_alive() {
  local name=$1
  if [[ "$name" =~ ^(gwt([a-z0-9]+)-) ]]; then
    local run_prefix=${BASH_REMATCH[1]} mid=${BASH_REMATCH[2]}
    if pgrep -f -- "gwt-netns-watchdog ${run_prefix} " >/dev/null 2>&1; then
      echo "watchdog of ${run_prefix} is running"; return 0
    fi
    if [ "${#mid}" -ge 4 ] && [ "${#mid}" -le 8 ]; then
      local pid=$((36#${mid:0:${#mid}-3}))
      if [ "$pid" -gt 1 ] && [ -d "/proc/$pid" ]; then echo "pid $pid is alive"; return 0; fi
    fi
  elif [[ "$name" =~ ([0-9]+)$ ]]; then
    local pid=$((10#${BASH_REMATCH[1]}))
    if [ "$pid" -gt 1 ] && [ -d "/proc/$pid" ]; then echo "pid $pid is alive"; return 0; fi
  fi
  return 1
}

removed=0
skipped=0
failed=0
declare -A skip=()
for round in 1 2 3; do
  mapfile -t names < <(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${prefix}" || true)
  todo=()
  for ns in "${names[@]}"; do
    [[ "$ns" == "$prefix"* ]] || continue # belt and braces: literal prefix match
    [ -n "${skip[$ns]:-}" ] && continue
    if [ "$force" = 0 ] && why=$(owner_alive "$ns"); then
      echo "skipping namespace $ns: $why (use --force to remove anyway)"
      skip[$ns]=1; skipped=$((skipped + 1))
      continue
    fi
    todo+=("$ns")
  done
  [ "${#todo[@]}" -eq 0 ] && break
  for ns in "${todo[@]}"; do
    for _ in 1 2 3; do
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      [ -z "$pids" ] && break
      if [ "$dry" = 1 ]; then echo "would kill -9 (in $ns):" $pids; break; fi
      echo "$pids" | xargs -r kill -9 2>/dev/null || true
      sleep 0.1
    done
    if run ip netns del "$ns"; then
      [ "$dry" = 1 ] || { echo "deleted namespace $ns"; removed=$((removed + 1)); }
    elif [ "$round" = 3 ]; then
      echo "netns-sweep: could not delete $ns" >&2; failed=$((failed + 1))
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
  if [ "$force" = 0 ] && why=$(owner_alive "$base"); then
    echo "skipping $d: $why"
    continue
  fi
  run rm -rf -- "$d"
  [ "$dry" = 1 ] || echo "removed $d"
done

if [ "$dry" = 1 ]; then
  echo "netns-sweep: dry run, nothing changed"
else
  echo "netns-sweep: prefix '$prefix': $removed namespace(s) removed, $skipped skipped (live), $failed failure(s)"
fi
[ "$failed" -eq 0 ]
