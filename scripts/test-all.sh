#!/usr/bin/env bash
# Every test of the workspace, as CI runs it: formatting, lints, unit and integration tests
# (real redis-server and WebSocket clients), the conformance suite, the named simulation
# scenarios with their snapshots, a simulation campaign with a determinism check, the HTML
# timelines drawn in headless Chromium, the sharded-campaign check (four shards merged
# equal one run, on a planted defect), the planted defects (every patch under defects/ still
# applies; the CI subset is caught), and the workflow and Kubernetes manifests linted.
# Installs and starts Redis itself when MATCH_TEST_REDIS_URL is not set.
#   MATCH_SIM_CI_SEEDS        seeds of the campaign (default 2000)
#   MATCH_SIM_CI_DETERMINISM  seeds run twice to compare trace hashes (default 200)
#   CONFORMANCE_CASES         conformance cases per seed (default 1000); the suite runs from
#                             its fixed seed and from one derived from the commit hash
#   MATCH_SIM_DEFECT_SEEDS    seeds per planted defect of the CI subset (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${MATCH_TEST_REDIS_URL:-}" ]]; then
  exec scripts/with-redis.sh "$0" "$@"
fi

seeds=${MATCH_SIM_CI_SEEDS:-2000}
determinism=${MATCH_SIM_CI_DETERMINISM:-200}
export INSTA_UPDATE=no   # a changed snapshot fails the run; review it with cargo insta review
# CI's disk is shared and sometimes nearly full: no incremental caches (a clean checkout
# gains nothing from them), and the campaign reuses the test build's match-sim below.
export CARGO_INCREMENTAL=0

step() { printf '\n==> %s\n' "$*" >&2; }

# A clean build of every test needs about 700 MB under target/. With less free, a linker
# dies mid-write (SIGBUS), which reads like a compiler bug; say what it really is up front.
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir"
free_mb=$(df -Pm "$target_dir" 2>/dev/null | awk 'NR == 2 { print $4 }' || true)
if [[ -n "$free_mb" && "$free_mb" -lt 1000 ]]; then
  printf 'test-all: warning: only %s MB free under %s; a clean build needs about 700 MB\n' \
    "$free_mb" "$target_dir" >&2
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "planted defects still apply (git apply --check defects/*.patch)"
scripts/defects.sh --check

step "lint the GitHub Actions workflow and the Kubernetes Job (schemas from PyPI tools)"
scripts/lint-deploy.sh

step "cargo clippy (deny warnings)"
# In the release profile, like the tests below, so both share the build scripts and proc
# macros instead of building them twice (about 300 MB less on disk). The code checked is
# the same: nothing in the workspace is behind cfg(debug_assertions).
cargo clippy --release --workspace --all-targets -- -D warnings

step "cargo test (unit, integration on $MATCH_TEST_REDIS_URL, conformance, named scenarios)"
cargo test --workspace --release

# The run above checks the conformance suite from its fixed seed, the same cases every
# time. One more run from a seed derived from the commit explores new cases as the code
# changes; any failure replays with the command printed here (and in the failure itself).
if commit=$(git rev-parse HEAD 2>/dev/null); then
  conformance_seed=$(( 16#${commit:0:15} ))   # 60 bits of the hash: a valid u64
else
  commit="unknown (git unavailable)"
  conformance_seed=20261130
fi
conformance_cases=${CONFORMANCE_CASES:-1000}
step "conformance suite from the commit's seed $conformance_seed (commit $commit)"
printf 'replay: CONFORMANCE_CASES=%s CONFORMANCE_SEED=%s scripts/with-redis.sh cargo test --release -p match-sim --test conformance generated_sequences_match_redis\n' \
  "$conformance_cases" "$conformance_seed" >&2
CONFORMANCE_CASES=$conformance_cases CONFORMANCE_SEED=$conformance_seed \
  cargo test --release -p match-sim --test conformance generated_sequences_match_redis

# The release match-sim that `cargo test` just built for the sim's own tests. `cargo run`
# would build a second copy of the workspace: without the tests' dev-dependency features
# (tokio's test-util) the feature set differs, and so does every crate above tokio.
match_sim="$target_dir/release/match-sim"

step "simulation campaign: $seeds seeds"
# Its records (one JSON line per seed) and any failure's timeline stay under target/ for CI
# to upload. --require-coverage fails the campaign when a reachable recovery rule or race
# window of the catalogue (docs/design.md, "Rule coverage") was reached by no seed.
"$match_sim" fuzz --seeds "$seeds" --quiet --jsonl "$target_dir/match-sim/ci-campaign.jsonl" \
  --html-dir "$target_dir/match-sim/timelines" --require-coverage

step "determinism check: $determinism seeds run twice"
"$match_sim" fuzz --seeds "$determinism" --start 1000000 --check-determinism --quiet

step "timelines in headless Chromium (screenshots in $target_dir/browser)"
MATCH_SIM="$match_sim" scripts/browser-check.sh

# Last: it builds a defective copy into target/ (and puts the real binary back).
step "four shards merged equal one run (planted defect, scratch copy reusing target/)"
scripts/shard-check.sh

# Also a scratch build per defect (same mechanism), so after the shard check.
defect_seeds=${MATCH_SIM_DEFECT_SEEDS:-200}
step "planted defects of defects/ci-subset caught within $defect_seeds seeds each"
scripts/defects.sh --subset ci --seeds "$defect_seeds"

step "all tests passed"
