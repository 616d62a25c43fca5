"""``frnn generate``: preview task sequences, check their statistics, write them to a file."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from frnn_cli import config
from frnn_cli.cli.common import console, parse_seed
from frnn_cli.data import NOISE_VARIANCE, REFERENCE_SEED, generate_data
from frnn_cli.errors import BadInput
from frnn_cli.resources import check_fits, sequences_bytes
from frnn_cli.runs import atomic_save_npz, atomic_write_text

PREVIEW_ROWS = 8
PREVIEW_STEPS = 6


@dataclass
class GenerateConfig:
    """Keys of ``frnn generate``."""

    # Sequence length T.
    T: int = field(default=10, metadata={"min": 1})
    # Number of sequences.
    n: int = field(default=8, metadata={"min": 1})


def _csv_text(x: np.ndarray, y: np.ndarray) -> str:
    n, T, _ = x.shape
    lines = ["seq,y," + ",".join(f"x{t}" for t in range(1, T + 1))]
    for i in range(n):
        lines.append(f"{i},{y[i, 0]:.1f}," + ",".join(repr(float(v)) for v in x[i, :, 0]))
    return "\n".join(lines) + "\n"


def generate(
    overrides: Annotated[list[str] | None, typer.Argument(metavar="[T=10] [n=8]", help="Sequence length T and number of sequences n.")] = None,
    seed: Annotated[str, typer.Option(help="Seed of the generator, decimal or hex.")] = hex(REFERENCE_SEED),
    out: Annotated[Path | None, typer.Option(help="Write the sequences: .npz (arrays x (n, T, 1), y (n, 1)) or .csv (one row per sequence).")] = None,
) -> None:
    """Draw n task sequences of length T, preview them and show their statistics.

    Sequences come from the reference generator generate_data(T, seed): x1 is +1 (class 1, y=1) or -1 (class 2, y=0); x2..xT is Gaussian noise with variance 0.2. The summary checks class balance and the noise mean and variance.

    Example: frnn generate T=20 n=1000 --out data.npz
    """
    cfg = config.load_config(None, overrides or [], schema=GenerateConfig)
    check_fits(sequences_bytes(cfg.T, cfg.n), f"{cfg.n} sequences of T={cfg.T}")
    seed_value = parse_seed(seed)
    if out is not None and out.suffix.lower() not in (".npz", ".csv"):
        raise BadInput(f"--out: expected a file name ending in .npz or .csv, got {str(out)!r}")
    if out is not None and not out.parent.is_dir():
        raise BadInput(f"--out: folder {str(out.parent)!r} does not exist")
    pairs = list(itertools.islice(generate_data(cfg.T, seed=seed_value), cfg.n))
    x = np.stack([p[0] for p in pairs])  # (n, T, 1)
    y = np.stack([p[1] for p in pairs])  # (n, 1)

    table = Table(title=f"First {min(cfg.n, PREVIEW_ROWS)} of {cfg.n} sequences (T={cfg.T}, seed={seed})")
    table.add_column("#", justify="right")
    table.add_column("y", justify="right")
    for t in range(1, min(cfg.T, PREVIEW_STEPS) + 1):
        table.add_column(f"x{t}", justify="right", style="bold" if t == 1 else None)
    if cfg.T > PREVIEW_STEPS:
        table.add_column("…")
    for i in range(min(cfg.n, PREVIEW_ROWS)):
        cells = [f"{v:+.2f}" for v in x[i, :PREVIEW_STEPS, 0]]
        table.add_row(str(i), f"{y[i, 0]:.0f}", *cells, *(["…"] if cfg.T > PREVIEW_STEPS else []))
    console.print(table)

    noise = x[:, 1:, 0].ravel()
    console.print(f"class 1 (y=1): {int(y.sum())} of {cfg.n} ({y.mean():.1%}; expected 50%)")
    if noise.size > 1:
        console.print(f"noise x2..xT: {noise.size} values")
        console.print(f"  mean     {noise.mean():+.4f} (expected 0)")
        console.print(f"  variance {noise.var(ddof=1):.4f} (expected {NOISE_VARIANCE})")
    else:
        console.print("noise: none (T = 1: every sequence is its class element only)")
    if out is not None:
        try:
            if out.suffix.lower() == ".npz":
                atomic_save_npz(out, x=x, y=y)
            else:
                atomic_write_text(out, _csv_text(x, y))
        except OSError as exc:
            raise BadInput(f"--out: cannot write {str(out)!r}: {exc.strerror or exc}") from None
        console.print(f"wrote {out}")
