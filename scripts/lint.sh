#!/usr/bin/env bash
# ruff on the whole tree (package, tests, benchmarks, scripts) and mypy on the package, both
# configured in pyproject.toml; .ci/run runs this before the tests.
# mypy cannot follow the editable install's import hook, so it reads the package through a tree of
# links named as the package is (.mypy-path/stegonode/<subpackage> -> the repository's folders).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check
root=.mypy-path/stegonode
mkdir -p "$root"
for package in cli node handlers segmenters dicom codecs models web errors training; do
  ln -sfn "../../$package" "$root/$package"
done
MYPYPATH=.mypy-path .venv/bin/mypy
