# shellcheck shell=bash
# Builds match-sim with a planted defect (a patch under defects/) from a scratch copy of the
# working tree at a fixed path, into the same target/: the one mechanism shared by
# scripts/shard-check.sh and scripts/defects.sh. Source it from a script whose working
# directory is the repository root.
#
# Why one fixed path under the root (.scratch/defect, outside target/): cargo hashes a path
# package by its path relative to the workspace root and records its sources relative to the
# package root, so the scratch copy's units are the working tree's units. A defect rebuilds
# only what the patch touches (match-server and what depends on it), never a dependency.
#
# Freshness: cargo decides by mtime. The first copy of a file keeps its mtime, so the units
# built from the working tree stay fresh; a file whose content differs from the scratch copy
# (a patch applied earlier, or a change in the working tree) is copied with a new mtime, so
# its units rebuild. The scratch build replaces those units and target/release/match-sim:
# scratch_restore puts the binary back and touches every file a patch changed in the
# working tree, so the next build of the real tree rebuilds what the scratch builds replaced.
#
# Functions (all take the scratch name, e.g. "defects"; paths are relative to the root):
#   scratch_begin NAME          save target/release/match-sim; restore it on EXIT
#   scratch_build NAME PATCH    sync the copy, apply PATCH, build; the defective binary is
#                               copied to $SCRATCH_TARGET/scratch-NAME/match-sim-defect and
#                               its path put in SCRATCH_SIM; returns non-zero if the patch
#                               does not apply or the build fails (log in SCRATCH_LOG)
#   scratch_restore             put the binary back, touch the patched files (idempotent)

SCRATCH_ROOT=$(pwd)
SCRATCH_TARGET="${CARGO_TARGET_DIR:-$SCRATCH_ROOT/target}"
SCRATCH_SIM=""
SCRATCH_LOG=""
SCRATCH_SAVED=""
SCRATCH_PATCHED=()

# The build of scripts/test-all.sh (`cargo test --workspace --release`), narrowed to one
# test target of match-sim: the same feature set (dev-dependencies of every member), so its
# units are the test build's, and cargo builds the match-sim binary for that test.
SCRATCH_BUILD=(cargo test --workspace --release --no-run --test scenarios)

scratch_begin() {
  local out="$SCRATCH_TARGET/scratch-$1"
  mkdir -p "$out"
  SCRATCH_SAVED="$out/match-sim.main"
  if [[ -f "$SCRATCH_TARGET/release/match-sim" ]]; then
    cp -p "$SCRATCH_TARGET/release/match-sim" "$SCRATCH_SAVED"
  else
    SCRATCH_SAVED=""
  fi
  trap scratch_restore EXIT
}

scratch_restore() {
  if [[ -n "$SCRATCH_SAVED" && -f "$SCRATCH_SAVED" ]]; then
    cp -p "$SCRATCH_SAVED" "$SCRATCH_TARGET/release/match-sim"
  fi
  # The real tree's sources are older than the scratch build: make them newer so cargo
  # rebuilds the units the scratch build overwrote.
  if [[ ${#SCRATCH_PATCHED[@]} -gt 0 ]]; then
    (cd "$SCRATCH_ROOT" && touch "${SCRATCH_PATCHED[@]}")
  fi
}

# Copies the working tree's tracked files into the scratch copy (see freshness above).
scratch_sync() {
  local scratch=$1 file
  mkdir -p "$scratch"
  git ls-files -z | while IFS= read -r -d '' file; do
    [[ -f "$file" ]] || continue
    if [[ ! -e "$scratch/$file" ]]; then
      mkdir -p "$(dirname "$scratch/$file")"
      cp -p "$file" "$scratch/$file"
    elif ! cmp -s "$file" "$scratch/$file"; then
      cp "$file" "$scratch/$file"
    fi
  done
  # A file the working tree no longer tracks (moved or deleted since the last sync) must
  # not linger: a module moved from `x.rs` to `x/mod.rs` would be found twice.
  comm -13 <(git ls-files | sort) \
    <(cd "$scratch" && find . -path ./.git -prune -o -type f -print | sed 's|^\./||' | sort) |
    while IFS= read -r file; do rm -f "$scratch/$file"; done
  # Its own repository, so git apply patches it from its root (not the enclosing tree's).
  [[ -d "$scratch/.git" ]] || git -C "$scratch" init -q
}

scratch_build() {
  local name=$1 patch=$2
  local scratch="$SCRATCH_ROOT/.scratch/defect" out="$SCRATCH_TARGET/scratch-$name"
  mkdir -p "$out"
  SCRATCH_LOG="$out/build.log"
  SCRATCH_SIM=""
  scratch_sync "$scratch"
  local file
  while IFS= read -r file; do
    SCRATCH_PATCHED+=("$file")
  done < <(git apply --numstat "$patch" | cut -f3)
  if ! git -C "$scratch" apply "$SCRATCH_ROOT/$patch" 2> "$SCRATCH_LOG"; then
    return 1
  fi
  if ! (cd "$scratch" && CARGO_TARGET_DIR="$SCRATCH_TARGET" CARGO_INCREMENTAL=0 \
    nice "${SCRATCH_BUILD[@]}") >> "$SCRATCH_LOG" 2>&1; then
    return 1
  fi
  SCRATCH_SIM="$out/match-sim-defect"
  cp -p "$SCRATCH_TARGET/release/match-sim" "$SCRATCH_SIM"
}
