"""Sequence input speed and memory: dlpipe beside tangermeme, gReLU, kipoiseq and pyfaidx.

Measures, in one run on one core:

1. encoding 20,000 × 1 kb sequences from strings into what the model is fed from the host
   (dlpipe: uint8 codes; the peers: float one-hot), and dlpipe's codes → float one-hot
   expansion (done on the device at batch time);
2. extracting 100,000 1-kb intervals from a FASTA: pysam (dlpipe) vs pyfaidx;
3. one training epoch of a CNN through dlpipe's data path (uint8 codes, DataLoader, one-hot in
   the model) vs the same model on one-hot tensors already in memory;
4. memory of 1 M × 1 kb sequences held as dlpipe holds them.

    bash benchmarks/setup_peers.sh && .venv/bin/python benchmarks/sequence_speed.py
    python benchmarks/sequence_speed.py --device cuda --sections epoch   # on a GPU machine

Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
# Appended: where a peer and dlpipe share a dependency (numpy, torch, numba), both use the
# environment's copy.
sys.path.append(str(ROOT / "benchmarks" / ".peers"))
torch.set_num_threads(1)

from dlpipe.alphabet import encode  # noqa: E402
from dlpipe.models.blocks import OneHot  # noqa: E402

N_SEQ, LENGTH = 20_000, 1_000


def best_of(fn: Callable[[], object], repeats: int = 5) -> float:
    """Fastest of ``repeats`` wall times (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def encoding(rows: list[tuple[str, str, str]]) -> None:
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), LENGTH)) for _ in range(N_SEQ)]
    mbp = N_SEQ * LENGTH / 1e6
    candidates: dict[str, Callable[[], object]] = {"dlpipe (uint8 codes)": lambda: encode(seqs)}
    try:
        from tangermeme.utils import one_hot_encode

        candidates["tangermeme one_hot_encode"] = lambda: [one_hot_encode(s) for s in seqs]
    except ImportError:
        pass
    try:
        from grelu.sequence.format import strings_to_one_hot

        candidates["gReLU strings_to_one_hot"] = lambda: strings_to_one_hot(seqs)
    except ImportError:
        pass
    try:
        from kipoiseq.transforms.functional import one_hot_dna

        candidates["kipoiseq one_hot_dna"] = lambda: [one_hot_dna(s) for s in seqs]
    except ImportError:
        pass
    # Round robin, best of each: drift in the machine's load hits every candidate alike.
    best = dict.fromkeys(candidates, float("inf"))
    for round_ in range(5):
        for name, fn in candidates.items():
            if "gReLU" in name and round_ >= 2:
                continue  # seconds per call; two calls tell its rate
            best[name] = min(best[name], best_of(fn, repeats=1))
    rates = {name: mbp / t for name, t in best.items()}
    for name, rate in rates.items():
        rows.append(("encode strings → model input", name, f"{rate:.0f} Mbp/s"))
    peers = {name: rate for name, rate in rates.items() if not name.startswith("dlpipe")}
    if peers:
        fastest = max(peers, key=peers.get)
        ratio = rates["dlpipe (uint8 codes)"] / peers[fastest]
        rows.append(("encode: dlpipe ÷ fastest peer", fastest, f"{ratio:.1f}×"))
    codes = torch.from_numpy(encode(seqs))  # encode's result is writable: no copy
    expand = OneHot(4)

    def batches() -> None:  # as in training: one batch of 128 sequences at a time
        for i in range(0, N_SEQ, 128):
            expand(codes[i : i + 128])

    rows.append(("codes → float one-hot, batches of 128 (CPU)", "dlpipe OneHot",
                 f"{mbp / best_of(batches):.0f} Mbp/s"))  # fmt: skip


def extraction(rows: list[tuple[str, str, str]], folder: Path) -> None:
    import pysam

    rng = np.random.default_rng(1)
    fasta = folder / "genome.fa"
    sizes = [20_000_000, 15_000_000]
    with open(fasta, "w") as handle:
        for c, size in enumerate(sizes):
            seq = rng.choice(np.frombuffer(b"ACGT", np.uint8), size).tobytes().decode()
            handle.write(f">chr{c + 1}\n")
            handle.writelines(seq[i : i + 60] + "\n" for i in range(0, size, 60))
    pysam.faidx(str(fasta))
    chrom = rng.integers(0, 2, 100_000)
    starts = (rng.random(100_000) * (np.array(sizes)[chrom] - LENGTH)).astype(int)
    names = [f"chr{c + 1}" for c in chrom]

    def with_pysam() -> None:
        fa = pysam.FastaFile(str(fasta))
        encode([fa.fetch(n, s, s + LENGTH) for n, s in zip(names, starts, strict=True)])

    rows.append(("extract 100k × 1 kb", "pysam (dlpipe)", f"{best_of(with_pysam, 3):.2f} s"))
    try:
        import pyfaidx

        def with_pyfaidx() -> None:
            fa = pyfaidx.Fasta(str(fasta), as_raw=True, sequence_always_upper=True)
            encode([fa[n][s : s + LENGTH] for n, s in zip(names, starts, strict=True)])

        rows.append(("extract 100k × 1 kb", "pyfaidx", f"{best_of(with_pyfaidx, 3):.2f} s"))
    except ImportError:
        pass


def epoch_overhead(rows: list[tuple[str, str, str]], device: str = "cpu") -> None:
    from dlpipe.models.cnn import SequenceCNN
    from dlpipe.train import make_loader

    n = 8_000
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 4, size=(n, LENGTH), dtype=np.uint8)
    y = torch.from_numpy(rng.integers(0, 2, n))
    # The baseline: one-hot tensors already where the model runs (host or GPU memory).
    onehot = OneHot(4)(torch.from_numpy(codes)).to(device)
    y_dev = y.to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    torch.manual_seed(0)
    model = SequenceCNN(4, 2, filters=(64, 64), kernel_sizes=(15, 7)).to(device)
    opt = torch.optim.Adam(model.parameters())

    def epoch(batches: Callable[[], object]) -> float:
        start = time.perf_counter()
        for x, t in batches():
            # As Lightning does: the batch moves to the device, codes expand there.
            x, t = x.to(device, non_blocking=True), t.to(device, non_blocking=True)
            opt.zero_grad()
            loss_fn(model(x), t).backward()
            opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def in_memory() -> object:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(device)
        return ((onehot[perm[i : i + 128]], y_dev[perm[i : i + 128]]) for i in range(0, n, 128))

    loader = make_loader(codes, y.numpy(), batch_size=128, shuffle=True, seed=0)  # fit's loader
    # Alternate the two so that drift in the machine's load hits both alike; keep the best.
    times: dict[str, list[float]] = {"memory": [], "dlpipe": []}
    epoch(in_memory)  # warm-up (GPU kernels, allocator)
    for _ in range(3 if device == "cpu" else 10):
        times["memory"].append(epoch(in_memory))
        times["dlpipe"].append(epoch(lambda: loader))
    base, piped = min(times["memory"]), min(times["dlpipe"])
    what = f"CNN epoch, 8k × 1 kb, {device}"
    rows.append((what, f"one-hot tensors already in {device} memory", f"{base:.2f} s"))
    rows.append((what, "dlpipe data path (host codes → loader → one-hot on the device)",
                 f"{piped:.2f} s ({100 * (piped / base - 1):+.1f} %)"))  # fmt: skip
    if device != "cpu":
        codes_dev = torch.from_numpy(codes).to(device)
        expand = OneHot(4).to(device)

        def expand_all() -> None:
            for i in range(0, n, 128):
                expand(codes_dev[i : i + 128])
            torch.cuda.synchronize()

        rows.append((f"codes → float one-hot, batches of 128 ({device})", "dlpipe OneHot",
                     f"{n * LENGTH / 1e6 / best_of(expand_all):.0f} Mbp/s"))  # fmt: skip


def memory(rows: list[tuple[str, str, str]]) -> None:
    code = (
        "import numpy as np, resource\n"
        "from dlpipe.alphabet import encode\n"
        "rng = np.random.default_rng(0)\n"
        "block = [''.join(rng.choice(list('ACGT'), 1000)) for _ in range(1000)]\n"
        "codes = np.empty((1_000_000, 1000), np.uint8)\n"
        "for i in range(0, 1_000_000, 1000):\n"
        "    codes[i:i + 1000] = encode(block)\n"
        "status = open('/proc/self/status').read().split('VmRSS:')[1].split()[0]\n"
        "print(status)\n"
    )
    # Resident memory of a fresh process holding the codes (ru_maxrss would inherit the
    # parent's high-water mark across fork).
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss_gb = int(out.stdout.strip()) / 1024**2
    rows.append(("hold 1 M × 1 kb sequences", "dlpipe (uint8 codes), resident", f"{rss_gb:.2f} GB"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the epoch measurement)")
    parser.add_argument(
        "--sections",
        default="encode,extract,epoch,memory",
        help="comma-separated subset of encode, extract, epoch, memory",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    rows: list[tuple[str, str, str]] = []
    if "encode" in sections:
        encoding(rows)
    if "extract" in sections:
        with tempfile.TemporaryDirectory() as tmp:
            extraction(rows, Path(tmp))
    if "epoch" in sections:
        epoch_overhead(rows, args.device)
    if "memory" in sections:
        memory(rows)
    cpu = platform.processor() or platform.machine()
    gpu = f", {torch.cuda.get_device_name()}" if args.device != "cpu" else ""
    print(f"Machine: {cpu}, {os.cpu_count()} CPUs{gpu}, Python {platform.python_version()}, "
          f"torch {torch.__version__}; one CPU thread. Peak RSS of this run: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.1f} GB\n")  # fmt: skip
    print("| measurement | implementation | result |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
