#!/usr/bin/env bash
# The main job: set up if needed, then run the DICOM node on embedded defaults (AE title
# STEGONODE, port 11112, data under ./stegonode-data; keys generated on first start).
# Pass options through, e.g. `scripts/run.sh --config node.toml`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/stegonode serve "$@"
