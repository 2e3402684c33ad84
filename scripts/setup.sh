#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: Debian packages (libzbar0 for pyzbar, dcmtk and
# dicom3tools as the independent DICOM tools the tests use), a virtual environment at .venv,
# pinned Python dependencies (constraints.txt) and stegonode itself (editable), with the extras
# the flags ask for (see the Python extras block below).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in libzbar0 dcmtk dicom3tools; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# Orthanc with its Python and DICOMweb plugins, for stegonode inside Orthanc (`--orthanc`) and the
# tests (`--test`).
case " $* " in *" --orthanc "* | *" --test "*)
  for pkg in orthanc orthanc-python orthanc-dicomweb; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done ;;
esac
# Debian's Chromium and its driver, for the web console's browser tests (`--test`): Playwright
# drives /usr/bin/chromium; never `playwright install`.
case " $* " in *" --test "*)
  for pkg in chromium chromium-driver; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done ;;
esac
# PostgreSQL's server, which the tests (`--test`) start as a throwaway instance on a loopback
# port (a node needs only a server it can reach, not this package).
case " $* " in *" --test "*) dpkg -s postgresql >/dev/null 2>&1 || missing+=(postgresql) ;; esac
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The OHIF viewer the console serves under /viewer (`--viewer`; `--test` for its browser test): npm's
# prebuilt @ohif/app (MIT; its dist/ folder, not built here), the version web/dicomweb names, into
# build/ohif/VERSION/dist. Nothing to do once it is there; npm keeps the package in its cache.
case " $* " in *" --viewer "* | *" --test "*)
  ohif_version=$(sed -n 's/^OHIF_VERSION = "\([^"]*\)".*/\1/p' web/dicomweb/__init__.py)
  ohif_dir="build/ohif/$ohif_version"
  if [ ! -f "$ohif_dir/dist/index.html" ]; then
    command -v npm >/dev/null || { echo "setup: the OHIF viewer needs npm (Node.js)" >&2; exit 1; }
    echo "setup: fetching the OHIF viewer @ohif/app@$ohif_version (prebuilt)" >&2
    mkdir -p "$ohif_dir"
    tarball=$(cd "$ohif_dir" && npm pack --silent "@ohif/app@$ohif_version")
    tar -xzf "$ohif_dir/$tarball" -C "$ohif_dir" --strip-components=1 package/dist package/LICENSE
    rm "$ohif_dir/$tarball"
  fi ;;
esac

# --- Python extras (the lean runtime, issue 16) ----------------------------------------------
# No flag: the runtime alone (numpy + onnxruntime run the shipped networks; scripts/run.sh).
# --test: what scripts/test.sh needs: pytest, and the training extra (torch, torchvision, onnx,
#   scikit-image) for the training tests and the ONNX-against-torch checks.
# --train: the training extra (train-segmenter, train-deepstego, deepstego-report, export-onnx).
# --report: what `stegonode report` needs: the training extra and the report extra (matplotlib,
#   markdown); --test includes it (tests/test_report.py).
# The stamp lists the extras installed; a later call with fewer keeps them (pip removes nothing).
extras=()
for arg in "$@"; do
  case "$arg" in
    --test) extras+=(test train report) ;;
    --train) extras+=(train) ;;
    --report) extras+=(train report) ;;
  esac
done
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.stegonode-installed
installed=$(cat "$stamp" 2>/dev/null || true)
wanted=$(printf '%s\n' ${installed//,/ } "${extras[@]}" | sort -u | paste -sd, -)
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ] \
   || [ "$wanted" != "$installed" ]; then
  echo "setup: installing Python dependencies into .venv${wanted:+ (extras: $wanted)}" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".${wanted:+[$wanted]}"
  echo "$wanted" > "$stamp"
fi
