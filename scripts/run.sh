#!/usr/bin/env bash
# The main job: set up if needed, then protect and reveal a bundled real CT (the demo).
# Once the DICOM node lands this starts the node on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/stegonode demo "$@"
