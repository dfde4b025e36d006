"""Compare two results folders file by file: which are byte-identical, and how the others differ.

    python benchmarks/compare_results.py OLD_RESULTS NEW_RESULTS

Every file under both folders is compared by sha256. For files that differ, the kinds dlpipe
writes are looked into: checkpoints (``*.ckpt``, scvi-tools' ``*.pt``) tensor by tensor and key
by key,
``provenance.json`` key by key, ``report.html`` with git commits masked. Used to show that a
restructure of the code changed no result (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Paths at which two loaded checkpoints differ (tensors compared exactly)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            if key not in new or key not in old:
                out.append(f"{where}/{key} only in {'old' if key in old else 'new'}")
            else:
                out += _differences(old[key], new[key], f"{where}/{key}")
        return out
    if isinstance(old, torch.Tensor) and isinstance(new, torch.Tensor):
        same = old.shape == new.shape and old.dtype == new.dtype and torch.equal(old, new)
        return [] if same else [f"{where}: tensor differs"]
    if isinstance(old, list | tuple) and isinstance(new, list | tuple) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True))
                for d in _differences(a, b, f"{where}[{i}]")]  # fmt: skip
    if isinstance(old, np.ndarray | pd.DataFrame | pd.Series | pd.Index):
        same = type(old) is type(new) and (
            old.equals(new) if hasattr(old, "equals") else np.array_equal(old, new)
        )
        return [] if same else [f"{where}: {type(old).__name__} differs"]
    return [] if old == new else [f"{where}: {str(old)[:80]!r} -> {str(new)[:80]!r}"]


def _explain(old: Path, new: Path) -> str:
    if old.suffix in (".ckpt", ".pt"):
        load = {"map_location": "cpu", "weights_only": False}
        found = _differences(torch.load(old, **load), torch.load(new, **load))
        return "; ".join(found) or "same content, other bytes"
    if old.name == "provenance.json":
        a, b = json.loads(old.read_text()), json.loads(new.read_text())
        return "keys differing: " + ", ".join(
            k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
        )
    if old.suffix == ".html":
        mask = re.compile(r"\b[0-9a-f]{40}(\+dirty)?\b")
        same = mask.sub("COMMIT", old.read_text()) == mask.sub("COMMIT", new.read_text())
        return "identical but for the git commit" if same else "content differs"
    return "content differs"


def main() -> int:
    """Print the comparison; exit 1 when a file exists in only one folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args()
    files = {
        folder: {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
        for folder in (args.old, args.new)
    }
    both = sorted(files[args.old] & files[args.new])
    differ = [name for name in both if _digest(args.old / name) != _digest(args.new / name)]
    print(
        f"{len(both)} files in both; {len(both) - len(differ)} byte-identical; {len(differ)} differ"
    )
    for name in differ:
        print(f"  {name}: {_explain(args.old / name, args.new / name)}")
    only = sorted(files[args.old] ^ files[args.new])
    for name in only:
        print(f"  only in {'old' if name in files[args.old] else 'new'}: {name}")
    return 1 if only else 0


if __name__ == "__main__":
    sys.exit(main())
