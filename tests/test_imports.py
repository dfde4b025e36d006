"""The library's imports: one direction, no cycles, every module on its own, light config checks.

The layers themselves are import-linter's contracts in pyproject.toml (also run by `make lint`);
these tests keep the rest of the discipline: every import at the top of its file except the
deliberate lazy loads (marked ``# lazy:``, and of dlpipe modules only in the layers that drive
heavy science), no private name of another module imported, and a Snakefile whose config
check loads no heavy library.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
BIN = Path(sys.executable).parent
#: Where a function may import a dlpipe module when it runs: the steps (one job, one rule), the
#: modalities and tasks (imported by the Snakefile for their config rules, they load the heavy
#: science they drive), and the command line.
LAZY_DLPIPE_ALLOWED = ("dlpipe/steps/", "dlpipe/modalities/", "dlpipe/tasks.py", "dlpipe/cli.py")
#: What checking a config must not import (each costs 0.4-4 s in every Snakemake start).
HEAVY = ("torch", "lightning", "sklearn", "scipy.stats", "matplotlib", "anndata", "scanpy",
         "scvi", "captum", "numba", "imblearn", "pyjaspar", "Bio", "logomaker", "memelite",
         "tangermeme")  # fmt: skip


def _modules() -> list[str]:
    names = []
    for path in sorted((SRC / "dlpipe").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def _function_imports() -> list[tuple[Path, ast.stmt, str]]:
    """Every import statement inside a function, with its file's source line (and the one above)."""
    found = []
    for path in sorted((SRC / "dlpipe").rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    context = lines[inner.lineno - 1] + "\n" + lines[inner.lineno - 2]
                    found.append((path, inner, context))
    return found


def _imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def test_every_module_imports_on_its_own() -> None:
    def run(module: str) -> tuple[str, subprocess.CompletedProcess[str]]:
        cmd = [sys.executable, "-c", f"import {module}"]
        return module, subprocess.run(cmd, capture_output=True, text=True, check=False)

    with ThreadPoolExecutor(max_workers=4) as pool:
        failed = {m: r.stderr[-500:] for m, r in pool.map(run, _modules()) if r.returncode}
    assert not failed, failed


def test_function_local_imports_are_marked_lazy_loads() -> None:
    unmarked = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path, node, context in _function_imports()
        if "# lazy:" not in context
    ]
    assert not unmarked, f"imports inside functions without a '# lazy:' reason: {unmarked}"


def test_dlpipe_modules_are_imported_lazily_only_where_heavy_science_is_driven() -> None:
    misplaced = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path, node, _ in _function_imports()
        if any(name.split(".")[0] == "dlpipe" for name in _imported_names(node))
        and not any(part in path.as_posix() for part in LAZY_DLPIPE_ALLOWED)
    ]
    assert not misplaced, f"dlpipe imported inside a function outside {LAZY_DLPIPE_ALLOWED}"


def test_no_private_name_of_another_module_is_imported() -> None:
    private = []
    for path in sorted((SRC / "dlpipe").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dlpipe"):
                private += [
                    f"{path.relative_to(SRC)}:{node.lineno} {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_")
                ]
    assert not private, private


def test_import_linter_contracts_hold() -> None:
    lint = BIN / "lint-imports"
    if not lint.exists():
        pytest.skip("import-linter is not installed next to this Python (pip install '.[dev]')")
    run = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "0 broken" in run.stdout


def test_checking_the_demo_config_loads_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from dlpipe.config import validate_config\n"
        "from dlpipe.schema import load_yaml\n"
        "from dlpipe.workflow import check_inputs, extra_report_files, fold_count\n"
        "config = validate_config(load_yaml('config/config.yaml'))\n"
        "check_inputs(config)\n"
        "for name, exp in config['experiments'].items():\n"
        "    fold_count(exp)\n"
        "    extra_report_files(name, exp)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]", run.stdout
