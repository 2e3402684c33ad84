#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: Debian packages (libzbar0 for pyzbar, dcmtk and
# dicom3tools as the independent DICOM tools the tests use), a virtual environment at .venv,
# pinned Python dependencies (constraints.txt) and stegonode itself (editable).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in libzbar0 dcmtk dicom3tools; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.stegonode-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "setup: installing Python dependencies into .venv" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
  touch "$stamp"
fi
