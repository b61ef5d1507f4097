#!/usr/bin/env bash
# The planted-defect table: does the simulation catch each defect kept under defects/?
#
#   scripts/defects.sh [--seeds N] [--start S] [--jobs J] [--stop-early] [--subset ci] [--record] [PATCH...]
#   scripts/defects.sh --check
#   scripts/defects.sh --render
#
# For each patch (default: every defects/*.patch; --subset ci: those listed in
# defects/ci-subset): apply it to the one scratch copy at .scratch/defect, build match-sim
# into the same target/ (only the units the patch touches rebuild; see scripts/lib/scratch.sh),
# run `match-sim fuzz --seeds N --jsonl` on it, and print one table row: the defect, caught or
# missed, seeds failed of those run, the first failing seed, the invariant that seed broke
# first, the invariant the patch's header says should catch it, and wall time (build
# included). --stop-early runs the window in growing chunks (50, 100, 200, ...) and stops
# after the first chunk with a failure: "seeds failed" then counts the seeds run.
# Exits non-zero if a defect is missed (unless its header says `Unreachable:`), or a patch
# does not apply or build. The real match-sim binary is put back afterwards.
#
# --check only verifies that every patch still applies to the working tree (`git apply
# --check`): whoever moves code a patch touches ports the patch in the same change; and that
# the table in docs/design.md is the rendering of defects/results.jsonl.
#
# --record appends each measured row (with the commit it was measured on) to
# defects/results.jsonl; --render rewrites the table of docs/design.md from it (the newest row
# per patch, "not measured" for a patch without one). The table is never edited by hand.
#
# A seed that fails on the unplanted code too (a finding of its own, e.g. a fresh seed not yet
# fixed) catches nothing: every failing seed is run again on the real match-sim binary, and
# one that fails there too is left out of the row (named in the record as
# `unplanted_failures`) and does not stop an early stop.
#
# A patch's header (the text before its first `diff --git`, which git apply ignores) holds
# `Invariant: <name>` (the invariant that should catch it) and, for a defect the design
# makes unreachable, `Unreachable: <reason>`; `Fuzz-args:` adds options to its fuzz run (e.g.
# --check-determinism for a defect that breaks replay rather than an invariant).
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=1000
start=0
jobs=2
stop_early=0
subset=""
check=0
record=0
render=0
patches=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --seeds) seeds=$2; shift 2 ;;
    --start) start=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --stop-early) stop_early=1; shift ;;
    --subset) subset=$2; shift 2 ;;
    --check) check=1; shift ;;
    --record) record=1; shift ;;
    --render) render=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d'; exit 0 ;;
    -*) echo "defects: unknown option $1" >&2; exit 2 ;;
    *) patches+=("$1"); shift ;;
  esac
done

if [[ -n "$subset" ]]; then
  while IFS= read -r line; do
    line=${line%%#*}
    line=${line//[[:space:]]/}
    [[ -n "$line" ]] && patches+=("defects/$line")
  done < "defects/$subset-subset"
fi
if [[ ${#patches[@]} -eq 0 ]]; then
  patches=(defects/*.patch)
fi

results=defects/results.jsonl
design=docs/design.md
table_tool=scripts/lib/defects_table.py
if [[ $render -eq 1 ]]; then
  python3 "$table_tool" render "$results" "$design"
  echo "defects: table in $design rendered from $results" >&2
  exit 0
fi

header() { sed '/^diff --git/,$d' "$1"; }
field() { header "$1" | sed -n "s/^$2: *//p" | head -n 1; }

if [[ $check -eq 1 ]]; then
  bad=0
  for patch in "${patches[@]}"; do
    if ! git apply --check "$patch" 2>/dev/null; then
      echo "defects: $patch no longer applies; port it to the code it plants into" >&2
      git apply --check "$patch" >&2 || true
      bad=1
    elif [[ -z "$(field "$patch" Invariant)" ]]; then
      echo "defects: $patch has no 'Invariant:' line in its header" >&2
      bad=1
    fi
  done
  [[ $bad -eq 0 ]] && echo "defects: all ${#patches[@]} patches apply" >&2
  python3 "$table_tool" check "$results" "$design" || bad=1
  exit $bad
fi

# shellcheck source=scripts/lib/scratch.sh
source scripts/lib/scratch.sh
scratch_begin defects
out="$SCRATCH_TARGET/scratch-defects"
table="$out/table.md"

# Seeds failed, first failing seed and its first invariant, from the records of one run,
# leaving out the seeds listed (space-separated) in $UNPLANTED.
tally() {
  python3 - "$@" <<'PY'
import json, os, sys
unplanted = set(os.environ.get("UNPLANTED", "").split())
failed = []
for path in sys.argv[1:]:
    for line in open(path):
        record = json.loads(line)
        if str(record.get("seed")) in unplanted:
            continue
        if record.get("type") == "seed" and record["outcome"] != "pass":
            first = record.get("first_violation") or {}
            failed.append((record["seed"], first.get("invariant", record["outcome"])))
failed.sort()
if failed:
    print(len(failed), failed[0][0], failed[0][1])
else:
    print(0, "-", "-")
PY
}

# The failing seeds of one record file, one a line.
failing_seeds() {
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    record = json.loads(line)
    if record.get("type") == "seed" and record["outcome"] != "pass":
        print(record["seed"])
PY
}

# Whether seed $1 fails on the unplanted binary too (with the patch's extra fuzz options).
fails_unplanted() {
  [[ -n "$SCRATCH_SAVED" && -x "$SCRATCH_SAVED" ]] || return 1
  local record="$out/unplanted.$1.jsonl"
  nice "$SCRATCH_SAVED" fuzz --seeds 1 --start "$1" --jobs 1 --quiet --no-html --no-shrink \
    --commit unplanted "${extra[@]}" --jsonl "$record" > /dev/null 2>&1 || true
  [[ -n "$(failing_seeds "$record")" ]]
}

printf '| defect | result | seeds failed | first failing seed | invariant (first failure) | expected | wall s |\n' | tee "$table"
printf '|---|---|---|---|---|---|---|\n' | tee -a "$table"
status=0
for patch in "${patches[@]}"; do
  name=$(basename "$patch" .patch)
  expected=$(field "$patch" Invariant)
  unreachable=$(field "$patch" Unreachable)
  began=$SECONDS
  echo "defects: $name: building" >&2
  if ! scratch_build defects "$patch"; then
    tail -n 30 "$SCRATCH_LOG" >&2
    printf '| %s | BUILD FAILED | - | - | - | %s | %s |\n' "$name" "$expected" \
      $((SECONDS - began)) | tee -a "$table"
    status=1
    continue
  fi
  read -r -a extra <<< "$(field "$patch" Fuzz-args)"
  rm -f "$out/$name".*.jsonl
  run=0 chunk=50 offset=$start records=()
  export UNPLANTED=
  while [[ $run -lt $seeds ]]; do
    n=$seeds
    if [[ $stop_early -eq 1 ]]; then
      n=$((chunk < seeds - run ? chunk : seeds - run))
    fi
    records+=("$out/$name.$offset.jsonl")
    echo "defects: $name: seeds $offset..$((offset + n))" >&2
    nice "$SCRATCH_SIM" fuzz --seeds "$n" --start "$offset" --jobs "$jobs" --quiet --no-html \
      --no-shrink --commit "defect:$name" "${extra[@]}" --jsonl "$out/$name.$offset.jsonl" > /dev/null || true
    run=$((run + n)) offset=$((offset + n)) chunk=$((chunk * 2))
    while IFS= read -r seed; do
      if fails_unplanted "$seed"; then
        UNPLANTED="${UNPLANTED:+$UNPLANTED }$seed"
        echo "defects: $name: seed $seed fails on the unplanted code too; left out" >&2
      fi
    done < <(failing_seeds "${records[-1]}")
    read -r failed first invariant < <(tally "${records[@]}")
    [[ $stop_early -eq 1 && $failed -gt 0 ]] && break
  done
  read -r failed first invariant < <(tally "${records[@]}")
  if [[ $failed -gt 0 ]]; then
    result=caught
  elif [[ -n "$unreachable" ]]; then
    result="missed (unreachable)"
  else
    result=MISSED
    status=1
  fi
  printf '| %s | %s | %s of %s | %s | %s | %s | %s |\n' "$name" "$result" "$failed" "$run" \
    "$first" "$invariant" "$expected" $((SECONDS - began)) | tee -a "$table"
  if [[ $record -eq 1 ]]; then
    python3 "$table_tool" record "$results" "$(python3 -c 'import json, sys; print(json.dumps(dict(zip(
      ["defect", "result", "failed", "run", "first", "invariant", "wall_s", "commit", "date", "start",
       "unplanted_failures"],
      sys.argv[1:]))))' "$name" "$result" "$failed" "$run" "$first" "$invariant" \
      $((SECONDS - began)) "$(git rev-parse HEAD)$(git diff --quiet HEAD -- src lua sim || echo +dirty)" \
      "$(date -u +%Y-%m-%d)" "$start" "$UNPLANTED")"
  fi
done
scratch_restore
echo "defects: table in $table" >&2
exit $status
