#!/usr/bin/env bash
# Set up if needed, then run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
exec .venv/bin/pytest "$@"  # not "python -m": the repo root on sys.path would expose codecs/ as a top-level package
