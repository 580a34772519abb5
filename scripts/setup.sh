#!/usr/bin/env bash
# One-time (idempotent) set-up of a fresh Debian machine for gwcluster, as root:
#   - Debian packages listed in scripts/apt-packages.txt, installed only where their command is missing;
#   - npm packages (npm install when node_modules is missing or older than package-lock.json);
#   - the native addon (built by npm install; rebuilt when its C++ sources changed) and the TypeScript
#     build (tsc -b, incremental).
# Safe to run again: it does only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r cmd pkg; do
  case "$cmd" in ''|'#'*) continue ;; esac
  if [[ "$cmd" == /* ]]; then [ -e "$cmd" ] || missing+=("$pkg")
  else command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg"); fi
done < scripts/apt-packages.txt

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  stamp=/var/lib/apt/periodic/gwcluster-update-stamp
  if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +360 2>/dev/null)" ]; then
    apt-get update -qq
    mkdir -p "$(dirname "$stamp")" && touch "$stamp"
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm install --no-audit --no-fund --loglevel=error
fi

# The addon is built by npm install; rebuild it when its C++ sources or binding.gyp changed since (a
# checkout that moved on, or the BPF toolchain installed after the first build).
addon=native-addon/build/Release/gwcluster_filter.node
if [ ! -e "$addon" ] || [ -n "$(find native-addon/binding.gyp native-addon/src -newer "$addon" \( -name '*.cc' -o -name '*.h' -o -name '*.c' -o -name '*.sh' -o -name binding.gyp \) -print -quit)" ]; then
  echo "setup: building the native addon"
  log=$(mktemp)
  if ! (cd native-addon && npx node-gyp rebuild) >"$log" 2>&1; then tail -40 "$log" >&2; rm -f "$log"; exit 1; fi
  rm -f "$log"
fi

npx tsc -b
