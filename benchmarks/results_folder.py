"""What reading a results folder safely costs: skops against pickle, and the manifest check.

For every fitted file (``preprocessor.skops``, ``baselines.skops``) of the experiments in a
results folder, the object is written again as dlpipe writes it now and with joblib (a pickle,
what dlpipe stored before), and both are read back ``--repeat`` times; the manifest check is
timed on the files that ``dlpipe predict`` reads. Run after ``make demo``::

    .venv/bin/python benchmarks/results_folder.py results --repeat 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import joblib

from dlpipe.io.files import MANIFEST, read_manifest, verify_files
from dlpipe.io.fitted import load_fitted, save_fitted


def _median_ms(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    """Print one line per fitted file and one per experiment's manifest check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results folder of the workflow")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print("file\tbytes skops\tbytes pickle\tms skops\tms pickle")
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted(args.results.glob("*/[0-9]*/*.skops")):
            obj = load_fitted(path)
            safe, pickled = Path(tmp) / "object.skops", Path(tmp) / "object.joblib"
            save_fitted(obj, safe)
            joblib.dump(obj, pickled)
            skops_ms = _median_ms(lambda p=safe: load_fitted(p), args.repeat)
            pickle_ms = _median_ms(lambda p=pickled: joblib.load(p), args.repeat)
            name = path.relative_to(args.results)
            print(f"{name}\t{safe.stat().st_size}\t{pickled.stat().st_size}\t"
                  f"{skops_ms:.2f}\t{pickle_ms:.2f}")  # fmt: skip
    print("\nexperiment\tfiles checked\tMB\tms manifest check")
    for manifest in sorted(args.results.glob(f"*/{MANIFEST}")):
        folder = manifest.parent
        names = [n for n in read_manifest(manifest) if not n.endswith(("history.tsv", ".json"))]
        names += ["dataset.json", *(n for n in read_manifest(manifest) if "calibration" in n)]
        paths = [folder / n for n in sorted(set(names))]
        size = sum(p.stat().st_size for p in paths) / 1e6
        ms = _median_ms(lambda m=manifest, p=paths: verify_files(m, p), args.repeat)
        print(f"{folder.name}\t{len(paths)}\t{size:.2f}\t{ms:.1f}")


if __name__ == "__main__":
    main()
