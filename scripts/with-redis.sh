#!/usr/bin/env bash
# Runs a command with a private redis-server on a free loopback port, installing Redis first
# when it is missing. The command sees MATCH_TEST_REDIS_URL; the server stops when it ends.
# Usage: scripts/with-redis.sh COMMAND [ARGS...]
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

install_redis() {
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "with-redis: redis-server is missing; installing it with apt-get" >&2
  if ! $sudo apt-get install -y redis-server >/dev/null; then
    $sudo apt-get update >/dev/null
    $sudo apt-get install -y redis-server >/dev/null
  fi
}

command -v redis-server >/dev/null 2>&1 || install_redis
command -v redis-cli >/dev/null 2>&1 || install_redis

dir=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# Try random high ports until one binds; redis-server exits at once when the port is taken.
for _ in $(seq 1 30); do
  port=$(( 20000 + RANDOM % 40000 ))
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" &
  pid=$!
  for _ in $(seq 1 50); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then break 2; fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
done
if [[ -z "$pid" ]]; then
  echo "with-redis: could not start redis-server on a free port" >&2
  exit 1
fi

export MATCH_TEST_REDIS_URL="redis://127.0.0.1:$port"
echo "with-redis: redis-server $(redis-server --version | awk '{print $3}') on $MATCH_TEST_REDIS_URL" >&2
"$@"
