#!/usr/bin/env bash
# Provisions the ONNX Runtime shared library that the edge loads at run time (ort `load-dynamic`).
# It comes from the `onnxruntime` wheel on PyPI (a registry we can reach), version matched to the
# ort crate's API level (ort 2.0.0-rc.15, feature api-31 -> onnxruntime 1.31.x).
# Result: <repo>/.ort/libonnxruntime.so (gitignored). Override the location with ORT_DYLIB_PATH.
set -euo pipefail
version=1.31.1
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.ort"
if [ -f "$dest/libonnxruntime.so.$version" ]; then
  echo "onnxruntime $version already at $dest"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "onnxruntime==$version"
wheel=$(ls "$tmp"/onnxruntime-*.whl)
mkdir -p "$dest"
python3 - "$wheel" "$dest" "$version" <<'PY'
import sys, zipfile, os
wheel, dest, version = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so")]
    if not names:
        sys.exit("libonnxruntime.so not found in " + wheel)
    name = sorted(names, key=len)[-1]
    with z.open(name) as src, open(os.path.join(dest, f"libonnxruntime.so.{version}"), "wb") as out:
        out.write(src.read())
PY
ln -sf "libonnxruntime.so.$version" "$dest/libonnxruntime.so"
echo "onnxruntime $version provisioned at $dest/libonnxruntime.so"
