#!/usr/bin/env bash
# Run checkov on terraform/ and the Dockerfiles (service/, batch/) with .checkov.yaml (skips listed and justified
# there). checkov lives in its own virtual environment, created on first use in the user's tool cache
# (like pre-commit's): ${XDG_CACHE_HOME:-~/.cache}/capstone/checkov-VERSION, shared by every checkout of
# this version, so a fresh clone does not install it again (installing takes ~40 s; a scan ~10 s).
# Exit status: 0 when every check passes, non-zero on any failed check or setup error.
#   tools/checkov.sh                 # scan
#   tools/checkov.sh --install-only  # only create/upgrade the venv (exit 3 if that fails)
#   CHECKOV_VENV=/path tools/checkov.sh
set -euo pipefail

CHECKOV_VERSION="3.3.30"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/capstone/checkov-$CHECKOV_VERSION}"
PYTHON="${PYTHON:-python3}"

cd "$ROOT"

installed_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null || true
}

install_only=0
if [[ "${1:-}" == "--install-only" ]]; then
    install_only=1
    shift
fi

# one installer at a time: checkouts (and test workers) share the venv
mkdir -p "$(dirname "$VENV")" || { echo "checkov.sh: cannot create $(dirname "$VENV")" >&2; exit 3; }
exec 9>"$VENV.lock"
flock 9
if [[ ! -x "$VENV/bin/python" ]]; then
    echo "checkov.sh: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV" || { echo "checkov.sh: cannot create $VENV" >&2; exit 3; }
fi
if [[ "$(installed_version)" != "$CHECKOV_VERSION" ]]; then
    echo "checkov.sh: installing checkov==$CHECKOV_VERSION into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" \
        || { echo "checkov.sh: cannot install checkov==$CHECKOV_VERSION" >&2; exit 3; }
fi
flock -u 9
if [[ "$install_only" == 1 ]]; then
    exit 0
fi

# No network needed for the scan itself: no platform upload, no external check download.
export BC_SKIP_MAPPING=TRUE
export CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
export LOG_LEVEL="${LOG_LEVEL:-ERROR}"

status=0
echo "== checkov: terraform/ =="
"$VENV/bin/checkov" --config-file "$ROOT/.checkov.yaml" --framework terraform \
    --directory terraform "$@" || status=$?
echo "== checkov: service/Dockerfile batch/Dockerfile =="
"$VENV/bin/checkov" --config-file "$ROOT/.checkov.yaml" --framework dockerfile \
    --file service/Dockerfile --file batch/Dockerfile "$@" || status=$?
exit "$status"
