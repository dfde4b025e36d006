#!/usr/bin/env bash
# The SLURM test of CI: install SLURM from Debian packages, start a single-node cluster under a
# temporary folder, run tests/test_slurm.py against it, and stop every daemon it started (also
# when anything fails). Needs root (apt-get, mknod). Prints the training jobs' sbatch calls and
# the wall time.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
start=$(date +%s)

bash tests/slurm/cluster.sh install
dir=$(mktemp -d -t dlpipe-slurm-XXXXXX)
status=1
finish() {
    bash tests/slurm/cluster.sh stop "$dir"
    if [ "$status" -ne 0 ]; then
        tail -n 20 "$dir"/log/*.log 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap finish EXIT

bash tests/slurm/cluster.sh start "$dir"
echo "SLURM cluster up in $(($(date +%s) - start)) s (install included)"
status=0
DLPIPE_SLURM_DIR="$dir" PATH="$dir/bin:$PATH" \
    "$PYTHON" -m pytest -m slurm tests/test_slurm.py -p no:cacheprovider || status=$?
if [ -s "$dir/snakemake.log" ]; then
    echo "training jobs as submitted to SLURM (--wrap command left out):"
    grep -o "sbatch call: .*--comment rule_train_[^ ]* .*" "$dir/snakemake.log" \
        | sed -e 's/ --wrap=.*//' || true
fi
echo "SLURM test took $(($(date +%s) - start)) s"
exit "$status"
