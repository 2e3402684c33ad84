#!/usr/bin/env bash
# Set up if needed, then run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# Test files run in parallel, one worker per core (at most 4; pytest-xdist, a test file per
# worker so its module fixtures start once); arguments after these override them (-n 0: serial).
exec .venv/bin/pytest -n auto --maxprocesses 4 --dist loadfile "$@"  # not "python -m": the repo root on sys.path would expose codecs/ as a top-level package
