#!/usr/bin/env bash
# Install the benchmark peers into benchmarks/.peers, apart from dlpipe's own dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
make install
grep -v '^#' benchmarks/peers.txt | xargs .venv/bin/python -m pip install --quiet --no-deps \
  --target benchmarks/.peers
