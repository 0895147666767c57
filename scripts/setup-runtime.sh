#!/usr/bin/env bash
# Fetch ONNX Runtime and the Silero VAD model from their PyPI wheels (the only registry this
# product may download from) into .cache/runtime/, verify their hashes, and link stable names.
# Idempotent: does nothing when the files are already there and verified.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.cache/runtime
ORT_VERSION=1.31.1
SILERO_VERSION=6.2.3
ORT_WHEEL=onnxruntime-${ORT_VERSION}-cp312-cp312-manylinux_2_28_x86_64.whl
SILERO_WHEEL=silero_vad-${SILERO_VERSION}-py3-none-any.whl
ORT_WHEEL_SHA=1f3dea47f2f0e5117c2404cea7d21fd253ae7836a3bf167a501cdfbb2600d536
SILERO_WHEEL_SHA=7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8

if [ -f "$DEST/.ok-$ORT_VERSION-$SILERO_VERSION" ] && [ -e "$DEST/libonnxruntime.so" ] && [ -e "$DEST/silero_vad.onnx" ]; then
  exit 0
fi
mkdir -p "$DEST/wheels"
# pip only downloads wheels here (no install into the system Python).
if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "setup-runtime: installing python3-pip" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-pip >/dev/null
  else
    echo "setup-runtime: python3 with pip is required (sudo apt-get install python3-pip)" >&2
    exit 1
  fi
fi

verify() { echo "$2  $1" | sha256sum -c --quiet - ; }
fetch() {
  local wheel=$1 sha=$2 spec=$3
  if [ -f "$DEST/wheels/$wheel" ] && verify "$DEST/wheels/$wheel" "$sha" 2>/dev/null; then return; fi
  echo "setup-runtime: downloading $spec from PyPI" >&2
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.12 --implementation cp \
    -d "$DEST/wheels" "$spec"
  verify "$DEST/wheels/$wheel" "$sha" || { echo "setup-runtime: sha256 mismatch for $wheel" >&2; exit 1; }
}
fetch "$ORT_WHEEL" "$ORT_WHEEL_SHA" "onnxruntime==$ORT_VERSION"
fetch "$SILERO_WHEEL" "$SILERO_WHEEL_SHA" "silero-vad==$SILERO_VERSION"

python3 - "$DEST" "$ORT_WHEEL" "$SILERO_WHEEL" "$ORT_VERSION" <<'PY'
import sys, zipfile, os, shutil
dest, ort, sil, ver = sys.argv[1:]
def extract(wheel, member, out):
    with zipfile.ZipFile(os.path.join(dest, "wheels", wheel)) as z, z.open(member) as src, open(out + ".tmp", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.replace(out + ".tmp", out)
extract(ort, f"onnxruntime/capi/libonnxruntime.so.{ver}", os.path.join(dest, f"libonnxruntime.so.{ver}"))
extract(sil, "silero_vad/data/silero_vad.onnx", os.path.join(dest, "silero_vad.onnx"))
PY
ln -sf "libonnxruntime.so.$ORT_VERSION" "$DEST/libonnxruntime.so"
touch "$DEST/.ok-$ORT_VERSION-$SILERO_VERSION"
echo "setup-runtime: ONNX Runtime $ORT_VERSION and Silero VAD $SILERO_VERSION ready in $DEST" >&2
