"""``frnn gradcheck``: BPTT against central differences on a small random network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from frnn_cli import config
from frnn_cli.cli.common import console, parse_seed, positive
from frnn_cli.errors import BadInput, ExperimentFailed
from frnn_cli.resources import check_gradcheck
from frnn_cli.gradcheck import GradcheckConfig, GradientCheckError, check_network, raise_on_failure


def gradcheck(
    overrides: Annotated[
        list[str] | None,
        typer.Argument(metavar="[key=value ...]", help="T, hidden, batch_size, outputs, per_step, init_scale, model (rnn/lstm), forget_bias, dtype (float64/float32)."),
    ] = None,
    eps: Annotated[float, typer.Option(callback=positive, help="Central-difference step (> 0).")] = 1e-7,
    thresh: Annotated[
        float | None,
        typer.Option(
            help="Bound on each entry's absolute difference |g_num - g| (with --relative: on each parameter's "
            "relative error ||g_num - g||/(||g_num|| + ||g||)). (default: 1e-7; with --relative 1e-6)",
            show_default=False,
        ),
    ] = None,
    relative: Annotated[
        bool, typer.Option("--relative", help="Bound the norm-wise relative error instead of the absolute difference.")
    ] = False,
    seed: Annotated[str, typer.Option(help="Seed of the network and data, decimal or hex.")] = "0",
    config_file: Annotated[Path | None, typer.Option("--config", help="YAML file with the keys above.")] = None,
) -> None:
    """Check BPTT gradients of W, R, V against central differences, entry by entry.

    With model=lstm the LSTM's W, R, b and V are checked the same way. The check runs in float64 (central differences need the loss to ~16 digits); with dtype=float32 the float32 network's backward runs on a float64 copy of its weights and the float32 rounding is reported beside it.

    Builds a small random network (weights U(-0.5, 0.5), so tanh is non-linear) on task sequences and compares every gradient entry with (f(theta+eps) - f(theta-eps)) / (2 eps). A parameter fails when any entry is farther than --thresh from its numerical value (the assignment's criterion), or with --relative when its norm-wise relative error exceeds --thresh. A failure names the entry, both values and the likely cause (eps too small or too large, or BPTT). Exit 0 when every parameter passes, 1 when any fails.

    Example: frnn gradcheck --eps 1e-7 T=20 per_step=true
    """
    if thresh is None:
        thresh = 1e-6 if relative else 1e-7
    if not (thresh == thresh and 0 < thresh < float("inf")):
        raise BadInput(f"--thresh: expected a finite number > 0, got {thresh:g}")
    cfg = config.load_config(config_file, overrides or [], schema=GradcheckConfig)
    seed_value = parse_seed(seed)
    check_gradcheck(cfg.model, cfg.T, cfg.hidden, cfg.batch_size, cfg.outputs)
    results, rounding = check_network(cfg, seed=seed_value, eps=eps, thresh=thresh, relative=relative)
    mode = "a target at every step" if cfg.per_step else "the target at the end"
    table = Table(
        title=f"Gradient check ({cfg.model}, {cfg.dtype}, T={cfg.T}, hidden={cfg.hidden}, B={cfg.batch_size}, {mode}, "
              f"eps={eps:g})",
    )
    for col in ("parameter", "shape", "max abs error", "relative error", "worst entry", "result"):
        table.add_column(col, justify="left" if col in ("parameter", "result", "shape") else "right")
    for r in results:
        table.add_row(
            r.name, "x".join(map(str, r.shape)), f"{r.max_abs:.2e}", f"{r.rel:.2e}", str(list(r.worst)),
            "[green]pass[/]" if r.passed else "[red]FAIL[/]",
        )
    console.print(table)
    # Plain lines, not a table caption: a caption is centred and wrapped to the table's width,
    # which split the sentence in two at 80 columns. Each line stays well under 80 characters.
    console.print("max abs error = max over entries of |g_num - g_BPTT|", highlight=False)
    console.print("relative error = ||g_num - g_BPTT|| / (||g_num|| + ||g_BPTT||)", highlight=False)
    which = "relative error" if relative else "max abs error"
    console.print(f"a parameter passes when its {which} <= thresh = {thresh:g}", highlight=False)
    if rounding is None:
        console.print("runs in float64: central differences need the loss to ~16 digits", highlight=False)
    else:
        console.print(f"dtype={cfg.dtype}: backward checked on a float64 copy of the weights", highlight=False)
        console.print(f"({cfg.dtype} keeps ~7 digits of the loss); {cfg.dtype} rounding of the", highlight=False)
        console.print(f"gradients: up to {rounding:.1e}", highlight=False)
    try:
        raise_on_failure(results, thresh)
    except GradientCheckError as exc:
        raise ExperimentFailed(str(exc)) from None
    console.print("all parameters pass")
