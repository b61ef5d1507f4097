#!/usr/bin/env bash
# Renders HTML timelines in headless Chromium and checks what a person would see: the page
# loads without a script error, every lane is drawn, and the failing fixture's violation
# marker is drawn. Keeps screenshots under target/browser/ (CI uploads them).
#
# Installs Debian's chromium-headless-shell (--no-install-recommends) when no headless
# Chromium is on the machine. Uses the match-sim the test build left in target/release
# (MATCH_SIM overrides).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
sim="${MATCH_SIM:-$target/release/match-sim}"
out="$target/browser"
mkdir -p "$out"

browser=""
for candidate in chromium-headless-shell chromium; do
  if command -v "$candidate" > /dev/null; then browser=$(command -v "$candidate"); break; fi
done
if [[ -z "$browser" ]]; then
  echo "browser-check: installing chromium-headless-shell" >&2
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    chromium-headless-shell > /dev/null
  browser=$(command -v chromium-headless-shell)
fi

# The machine has no network but the package registries: no first-run, sync, component
# or background fetches (they would only fail), and a fresh profile per run.
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chrome() {
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --user-data-dir="$profile" --window-size=1600,1000 \
    --virtual-time-budget=5000 "$@" 2> /dev/null
}

check() { # name, html file, whether a violation must be drawn
  local name=$1 page=$2 violation=$3
  chrome --dump-dom "file://$(realpath "$page")" > "$out/$name.dom.html"
  chrome --screenshot="$(realpath "$out")/$name.png" "file://$(realpath "$page")" > /dev/null
  python3 - "$page" "$out/$name.dom.html" "$violation" "$name" <<'PY'
import html, json, re, sys
page, dom, violation, name = sys.argv[1], open(sys.argv[2]).read(), sys.argv[3] == "1", sys.argv[4]
source = open(page).read()
data = json.loads(re.search(r'id="timeline-data" type="application/json">(.*?)</script>', source, re.S).group(1))
problems = []
errors = re.search(r'data-errors="([^"]*)"', dom)
if errors:
    problems.append("script errors: " + html.unescape(errors.group(1)))
if 'data-render="ok"' not in dom:
    problems.append("the page did not finish drawing (data-render is not ok)")
drawn = set(re.findall(r'class="lane" data-lane="([^"]+)"', dom))
for lane in data["lanes"]:
    if lane["name"] not in drawn:
        problems.append(f"lane {lane['name']} is not drawn")
arrows = len(re.findall(r'class="flow[ "]', dom))
if arrows == 0:
    problems.append("no arrow is drawn")
if violation and not re.search(r'class="violation" id="violation-0"', dom):
    problems.append("the violation marker is not drawn")
if problems:
    sys.exit(f"browser-check: {name}: " + "; ".join(problems))
print(f"browser-check: {name}: {len(drawn)} lanes, {arrows} arrows"
      + (", violation marker drawn" if violation else "") + ", no script error")
PY
}

# A named scenario (passing): every kind of lane and arrow.
"$sim" replay --named server_crash_with_players_loading --html "$out/named.html" > /dev/null 2>&1
check named "$out/named.html" 0
# The frozen failing fixture: the violation marker.
if "$sim" replay --scenario sim/fixtures/liveness-bound-unreachable.json \
  --html "$out/fixture.html" > /dev/null 2>&1; then
  echo "browser-check: the fixture passed; it must fail (see its comment)" >&2
  exit 1
fi
check fixture "$out/fixture.html" 1
echo "browser-check: screenshots in $out/named.png and $out/fixture.png" >&2
