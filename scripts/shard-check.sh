#!/usr/bin/env bash
# Four shards merged equal one unsharded run: on a seed range that contains failures (made
# by a planted defect), `fuzz --shard K/4 --jsonl` four times and `merge` must print the
# same summary as one `fuzz` of the same seeds - same seeds run and failed, same failure
# groups, same fault and behaviour counts - and hold the same records (wall time aside).
#
# The defect is built by scripts/lib/scratch.sh (the mechanism scripts/defects.sh uses too):
# a scratch copy at the fixed path .scratch/defect, built into the same target/, so only
# the units the patch touches are rebuilt; the real match-sim binary is put back after.
#   SHARD_CHECK_DEFECT  the patch (default defects/cancel-loading-forgets-queue.patch)
#   SHARD_CHECK_SEEDS   seeds in the window (default 240)
#   SHARD_CHECK_START   first seed (default 0)
set -euo pipefail
cd "$(dirname "$0")/.."

defect=${SHARD_CHECK_DEFECT:-defects/cancel-loading-forgets-queue.patch}
seeds=${SHARD_CHECK_SEEDS:-240}
start=${SHARD_CHECK_START:-0}
# shellcheck source=scripts/lib/scratch.sh
source scripts/lib/scratch.sh
out="$SCRATCH_TARGET/shard-check"
mkdir -p "$out"
scratch_begin shard-check
echo "shard-check: building match-sim with $defect (scratch copy in .scratch/defect)" >&2
if ! scratch_build shard-check "$defect"; then
  cat "$SCRATCH_LOG" >&2
  echo "shard-check: the scratch build failed" >&2
  exit 1
fi
sim="$SCRATCH_SIM"
scratch_restore

common=(--seeds "$seeds" --start "$start" --quiet --no-html --shrink-runs 8 --jobs 2 --commit shard-check)
echo "shard-check: one run of seeds $start..$((start + seeds))" >&2
"$sim" fuzz "${common[@]}" --jsonl "$out/one.jsonl" > "$out/one.txt" || true
for k in 1 2 3 4; do
  echo "shard-check: shard $k/4" >&2
  "$sim" fuzz "${common[@]}" --shard "$k/4" --jsonl "$out/shard-$k.jsonl" > "$out/shard-$k.txt" || true
done
"$sim" merge "$out"/shard-{1,2,3,4}.jsonl > "$out/merged.txt" || true

# The summary minus what depends on the machine: the header, wall time and seeds/s.
body() { grep -v -e '^match-sim ' -e '^  wall time ' -e '^  seeds/s ' "$1"; }
if ! diff <(body "$out/one.txt") <(body "$out/merged.txt"); then
  echo "shard-check: FAILED: the merged summary differs from one run's (above)" >&2
  exit 1
fi
failed=$(awk '/^  seeds failed/ { print $3 }' "$out/one.txt")
groups=$(grep -c '^FAILED ' "$out/one.txt" || true)
if [[ "${failed:-0}" -eq 0 ]]; then
  echo "shard-check: FAILED: the defect made no seed fail; the check proves nothing" >&2
  exit 1
fi
# The records themselves: same seeds, outcomes, signatures and counts.
python3 - "$out/one.jsonl" "$out"/shard-{1,2,3,4}.jsonl <<'PY'
import json, sys
def seeds(paths):
    records = {}
    for path in paths:
        for line in open(path):
            record = json.loads(line)
            if record["type"] == "seed":
                record.pop("wall_ms")
                records[record["seed"]] = record
    return records
one, shards = seeds(sys.argv[1:2]), seeds(sys.argv[2:])
if one != shards:
    diff = sorted(s for s in one.keys() | shards.keys() if one.get(s) != shards.get(s))
    sys.exit(f"shard-check: FAILED: records differ for seeds {diff[:20]}")
PY
echo "shard-check: ok: $failed of $seeds seeds failed in $groups groups; 4 shards merged equal one run" >&2
sed -n '/^failures:/,$p' "$out/merged.txt" >&2
