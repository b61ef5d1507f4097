#!/usr/bin/env bash
# bench/server.sh: server-side benchmarks of match-server on this machine, loopback only.
#
# For 1 and then 2 match-server instances (release build, bench config below), each on a
# fresh private redis-server:
#   1. match-loadgen at max rate (as fast as --concurrency allows), then at half that rate
#      (open loop), with a stub game server; server peak RSS (VmHWM) after each run;
#   2. a calibration run at max rate under MONITOR that splits client round trips from
#      script-inner commands (commandstats mixes them);
# then redis-benchmark for the commands a match sends (EVALSHA of enqueue.lua and
# try_match.lua, SET, GET, SCAN of the registry, SADD, PUBLISH to a pattern subscriber) and
# the players/s bound they imply. Prints a markdown table; raw JSON stays in $BENCH_OUT.
#
# The servers run the production auth path: auth mode "required" with a secret made for the
# run, and every loadgen player connects with a token signed with it (match-loadgen reads
# MATCH_SERVER_AUTH__SECRET as the servers do).
#
# Knobs (environment): MAX_PLAYERS, HALF_DURATION_S, CONCURRENCY, STUB_SERVERS, CLAIM_TTL_MS,
# MATCH_INTERVAL_MS, SERVER_LOG, BENCH_REQUESTS, INSTANCES, BENCH_OUT, CARGO_TARGET_DIR,
# MATCH_SERVER_AUTH__SECRET (default: a fresh random one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT="${BENCH_OUT:-$(mktemp -d /tmp/match-bench.XXXXXX)}"
MAX_PLAYERS="${MAX_PLAYERS:-40000}"
HALF_DURATION_S="${HALF_DURATION_S:-10}"
CALIBRATION_PLAYERS="${CALIBRATION_PLAYERS:-4000}"
CONCURRENCY="${CONCURRENCY:-256}"
STUB_SERVERS="${STUB_SERVERS:-256}"
CLAIM_TTL_MS="${CLAIM_TTL_MS:-10}"
MATCH_INTERVAL_MS="${MATCH_INTERVAL_MS:-20}"
SERVER_LOG="${SERVER_LOG:-warn}"
BENCH_REQUESTS="${BENCH_REQUESTS:-200000}"
INSTANCES="${INSTANCES:-1 2}"
MODE="Normal_1v1"
PREFIX="{mm}"
mkdir -p "$OUT"
MATCH_SERVER_AUTH__SECRET="${MATCH_SERVER_AUTH__SECRET:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')}"
export MATCH_SERVER_AUTH__SECRET

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# A TCP port on 127.0.0.1 nobody listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts a private redis-server; sets REDIS_PORT and REDIS_PID. Fails unless the server
# answering on the port is ours (a port taken in between would point us at someone else's).
start_redis() {
  REDIS_PORT="$(free_port)"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$OUT" --logfile "$OUT/redis-$REDIS_PORT.log" &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  local i
  for i in $(seq 50); do
    if redis-cli -p "$REDIS_PORT" info server 2>/dev/null | grep -q "^process_id:$REDIS_PID"; then
      return 0
    fi
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server on $REDIS_PORT did not start"
    sleep 0.1
  done
  die "redis-server $REDIS_PID does not answer on $REDIS_PORT"
}

# Starts N match-server instances on REDIS_PORT; sets SERVER_PIDS and SERVER_URLS.
start_servers() {
  local count=$1 i port pid
  SERVER_PIDS=()
  SERVER_URLS=""
  for i in $(seq "$count"); do
    port="$(free_port)"
    RUST_LOG="$SERVER_LOG" \
      MATCH_SERVER_TIMING__MATCH_INTERVAL_MS="$MATCH_INTERVAL_MS" \
      MATCH_SERVER_ALLOCATOR__CLAIM_TTL_MS="$CLAIM_TTL_MS" \
      MATCH_SERVER_LIMITS__MAX_CONNECTIONS=20000 \
      "$TARGET/release/match-server" --bind "127.0.0.1:$port" \
      --redis "redis://127.0.0.1:$REDIS_PORT" 2>"$OUT/server-$port.log" &
    pid=$!
    PIDS+=("$pid")
    SERVER_PIDS+=("$pid")
    SERVER_URLS="${SERVER_URLS:+$SERVER_URLS,}ws://127.0.0.1:$port/ws"
    wait_healthy "$port" "$pid"
  done
}

wait_healthy() {
  local port=$1 pid=$2 i
  for i in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || die "match-server on $port exited; see $OUT/server-$port.log"
    sleep 0.1
  done
  die "match-server on $port is not healthy"
}

# Peak RSS (VmHWM, kB) of each running server, space separated.
peak_rss_kb() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    awk '/^VmHWM:/ {printf "%s ", $2}' "/proc/$pid/status"
  done
}

# CPU seconds (user + system) a process has used so far.
cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"
}

# CPU seconds of every server, summed.
servers_cpu_s() {
  local pid total=0
  for pid in "${SERVER_PIDS[@]}"; do
    total="$(python3 -c "print($total + $(cpu_s "$pid"))")"
  done
  echo "$total"
}

stop_all() {
  cleanup
}

# One load run on fresh Redis and servers: scenario NAME INSTANCES LOADGEN-ARGS...
scenario() {
  local name=$1 count=$2
  shift 2
  start_redis
  start_servers "$count"
  log "$name: $count instance(s), loadgen $*  (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  local status=0 server_cpu0 redis_cpu0
  server_cpu0="$(servers_cpu_s)"
  redis_cpu0="$(cpu_s "$REDIS_PID")"
  /usr/bin/time -o "$OUT/$name.loadgen-cpu" -f "%U %S" \
    "$TARGET/release/match-loadgen" --servers "$SERVER_URLS" --mode "$MODE" \
    --redis "redis://127.0.0.1:$REDIS_PORT" --stub-gs 127.0.0.1:0 \
    --stub-gs-servers "$STUB_SERVERS" --concurrency "$CONCURRENCY" --json "$@" \
    >"$OUT/$name.json" || status=$?
  echo "$(peak_rss_kb)" >"$OUT/$name.rss"
  # CPU seconds used during the run: servers, redis-server, load generator.
  echo "$(python3 -c "print($(servers_cpu_s) - $server_cpu0)") \
$(python3 -c "print($(cpu_s "$REDIS_PID") - $redis_cpu0)") \
$(awk '{print $1 + $2}' "$OUT/$name.loadgen-cpu")" >"$OUT/$name.cpu"
  cut -d' ' -f1-3 /proc/loadavg >"$OUT/$name.load"
  stop_all
  [ "$status" -le 1 ] || die "$name: match-loadgen failed with status $status"
  [ "$status" -eq 0 ] || log "$name: VERIFICATION FAILED, see $OUT/$name.json"
}

json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }

run_loads() {
  local count max_rate half_rate
  for count in $INSTANCES; do
    scenario "i$count-max" "$count" --players "$MAX_PLAYERS" --rate 0
    max_rate="$(json_field "$OUT/i$count-max.json" "['matched_players_per_s']")"
    half_rate="$(python3 -c "print(max(2, round($max_rate / 2)))")"
    scenario "i$count-half" "$count" --rate "$half_rate" --duration "$HALF_DURATION_S"
    # Same closed loop as the max run, so the per-player command mix is the max run's.
    scenario "i$count-monitor" "$count" --rate 0 --players "$CALIBRATION_PLAYERS" --monitor
  done
}

# --- redis-benchmark: the physical bound ---------------------------------------------------

# ops/s of one redis-benchmark command line. CSV row: "test","rps", then six latency
# columns; the test name may hold quotes and commas (the PUBLISH payload), so count from the end.
bench_rps() {
  redis-benchmark -p "$REDIS_PORT" -n "$BENCH_REQUESTS" -c 50 -r 100000000 --csv "$@" \
    | awk -F'","' 'NR==2 {print $(NF-6)}'
}

# The script source exactly as the service sends it: lib.lua, a newline, the script.
load_script() {
  { cat "$ROOT/lua/lib.lua"; printf '\n'; cat "$ROOT/lua/$1.lua"; } \
    | redis-cli -p "$REDIS_PORT" -x script load
}

run_redis_benchmark() {
  start_redis
  local rb="$OUT/redis-benchmark.txt" enqueue try_match sub_pid payload
  : >"$rb"
  enqueue="$(load_script enqueue)"
  try_match="$(load_script try_match)"
  redis-cli -p "$REDIS_PORT" set "$PREFIX:lock:$MODE" benchtoken >/dev/null
  log "redis-benchmark on a fresh redis-server (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  # enqueue.lua: a fresh random player each call, as an enqueue is.
  echo "evalsha_enqueue $(bench_rps evalsha "$enqueue" 2 "$PREFIX:queue:$MODE" "$PREFIX:players" \
    __rand_int__ owner "$MODE" 0 99999999999999 1000000000)" >>"$rb"
  # try_match.lua: pops a pair the enqueue run left and creates its loading session.
  echo "evalsha_try_match $(bench_rps -n "$((BENCH_REQUESTS / 4))" evalsha "$try_match" 5 \
    "$PREFIX:queue:$MODE" "$PREFIX:players" "$PREFIX:loading:__rand_int__" \
    "$PREFIX:loading_index:$MODE" "$PREFIX:lock:$MODE" "$MODE" 2 __rand_int__ 0 \
    99999999999999 8 benchtoken)" >>"$rb"
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  echo "sadd $(bench_rps -t sadd)" >>"$rb"
  echo "set $(bench_rps set "$PREFIX:claim:__rand_int__" token NX PX 10)" >>"$rb"
  local i
  for i in $(seq 0 $((STUB_SERVERS - 1))); do
    printf 'SET dedicated_server:bench-%05d "{\\"address\\":\\"127.0.0.1:1\\",\\"status\\":\\"idle\\"}"\n' "$i"
  done | redis-cli -p "$REDIS_PORT" >/dev/null
  echo "get $(bench_rps get dedicated_server:bench-00000)" >>"$rb"
  echo "scan $(bench_rps scan 0 MATCH 'dedicated_server:*' COUNT 100)" >>"$rb"
  # PUBLISH to one pattern subscriber per instance, with a notice-sized payload.
  redis-cli -p "$REDIS_PORT" psubscribe "$PREFIX:notify:*" >/dev/null &
  sub_pid=$!
  PIDS+=("$sub_pid")
  payload='{"targets":[{"player":"6f1c2f5e-8a43-4c39-9c3e-2b7f8f0d3a11","owner":"6f1c2f5e-8a43-4c39-9c3e-2b7f8f0d3a12"},{"player":"6f1c2f5e-8a43-4c39-9c3e-2b7f8f0d3a13","owner":"6f1c2f5e-8a43-4c39-9c3e-2b7f8f0d3a14"}],"event":{"kind":"start_loading","loading":"6f1c2f5e-8a43-4c39-9c3e-2b7f8f0d3a15"}}'
  sleep 0.2
  echo "publish $(bench_rps publish "$PREFIX:notify:$MODE" "$payload")" >>"$rb"
  stop_all
  cat "$rb" >&2
}

machine() {
  {
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu: $(nproc) x $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "ram: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "kernel: $(uname -r)"
    echo "redis: $(redis-server --version | awk '{print $3}')"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  } >"$OUT/machine.txt"
}

main() {
  command -v redis-server >/dev/null || die "redis-server is not installed"
  command -v redis-benchmark >/dev/null || die "redis-benchmark is not installed"
  [ -x /usr/bin/time ] || die "/usr/bin/time is not installed (apt-get install time)"
  log "building release binaries into $TARGET"
  (cd "$ROOT" && cargo build --release -q -p match-server -p match-loadgen)
  machine
  run_loads
  run_redis_benchmark
  python3 "$ROOT/bench/table.py" "$OUT" "$INSTANCES"
  log "raw results in $OUT"
}

main "$@"
