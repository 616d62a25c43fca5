"""``frnn vanishing``: measure ||da(t)/da(1)||_2, its bound ||R||_2^(t-1), and ||dL/da(t)||, per step t."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from frnn_cli import config
from frnn_cli.cli.common import console, err_console, folder_name, new_run_dir, parse_seed
from frnn_cli.data import sample_batch
from frnn_cli.errors import BadInput, ExperimentFailed
from frnn_cli.resources import check_fits, vanishing_bytes
from frnn_cli import networks
from frnn_cli.runs import atomic_write_json, atomic_write_text, base_meta, finish_meta, read_status
from frnn_cli.vanishing import VanishingSummary, summarize
from frnn_cli.vanishing_lstm import LSTM_JACOBIANS, LSTMVanishingSummary, lstm_summarize

#: Keys that define the network; with --run the network comes from model.npz instead.
NETWORK_KEYS = ("model", "hidden", "init", "init_scale", "forget_bias")
CSV_COLUMNS = (
    "t", "jacobian_norm_median", "jacobian_norm_max", "bound",
    "error_norm_median", "error_norm_max", "spectral_radius_power",
)


@dataclass
class VanishingConfig(config.Config):
    """Keys of ``frnn vanishing``: every training key (so a train config file loads), plus n.

    Only T, n, seed, dtype and the network keys (hidden, init, init_scale) are used; the rest are
    kept so that the run folder's config.yaml records the trained network's settings.
    """

    # Sequence length T of the analysed sequences (default 20, the reference).
    T: int = field(default=20, metadata={"min": 1})
    # Number of task sequences n over which median and maximum are taken.
    n: int = field(default=200, metadata={"min": 1})


def load_run_model(run_dir: Path, hidden: int, dtype: str = "float64", model: str = "rnn") -> dict[str, np.ndarray]:
    """The trained weights from ``<run_dir>/model.npz``, as ``dtype``: W (I, 1), R (I, I), V (1, I)
    for the RNN; W (4I, 1), R (4I, I), b (4I,), V (1, I) for the LSTM.

    Raises
    ------
    BadInput
        If model.npz is missing, unreadable or corrupt, lacks a parameter, holds arrays of the
        wrong shape for ``hidden`` (D = K = 1 for the task), or non-finite values.
    """
    path = run_dir / "model.npz"
    if not path.is_file():
        raise BadInput(f"--run: {path} does not exist (expected a train run folder with model.npz and config.yaml)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: np.array(f[k]) for k in f.files}
    except Exception as exc:  # noqa: BLE001 -- any failure to read an untrusted file means "corrupt"
        raise BadInput(f"--run: cannot read {path}: not a valid .npz file ({type(exc).__name__})") from None
    names = networks.param_names(model)
    missing = [k for k in names if k not in arrays]
    if missing:
        raise BadInput(f"--run: {path} has no array {', '.join(missing)} (expected {', '.join(names)}; "
                       f"found {', '.join(sorted(arrays)) or 'none'})")
    G = 4 * hidden if model == "lstm" else hidden
    expected = {"W": (G, 1), "R": (G, hidden), "b": (G,), "V": (1, hidden)}
    expected = {k: v for k, v in expected.items() if k in names}
    params = {}
    for name, shape in expected.items():
        a = arrays[name]
        if a.shape != shape:
            raise BadInput(f"--run: {path}: {name} has shape {a.shape}, expected {shape} for hidden={hidden} in config.yaml")
        if not np.issubdtype(a.dtype, np.floating):
            raise BadInput(f"--run: {path}: {name} has dtype {a.dtype}, expected floating point")
        if not np.all(np.isfinite(a)):
            raise BadInput(f"--run: {path}: {name} contains NaN or inf (did the run diverge?)")
        params[name] = np.ascontiguousarray(a, dtype=dtype)
    return params


def _resolve(
    run: Path | None, config_file: Path | None, overrides: list[str], seed: str | None
) -> tuple[VanishingConfig, dict[str, np.ndarray] | None]:
    """The config, and the trained weights with --run (None: draw fresh ones)."""
    overrides = list(overrides)
    given = config.parse_overrides(overrides)  # also rejects malformed words early
    if seed is not None:
        if "seed" in given:
            raise BadInput("--seed and seed=... both given; give the seed once")
        overrides.append(f"seed={parse_seed(seed)}")
    if run is None:
        return config.load_config(config_file, overrides, schema=VanishingConfig), None
    if config_file is not None:
        raise BadInput("--run and --config both given: with --run the settings come from the run's config.yaml")
    if not run.is_dir():
        raise BadInput(f"--run: {str(run)!r} is not a folder (expected a train run folder with model.npz and config.yaml)")
    status = read_status(run)
    unfinished = status is not None and status not in ("completed", "diverged")
    if not (run / "model.npz").is_file():
        if unfinished:
            raise BadInput(
                f"--run: {run} has no model.npz: the run did not finish (meta.json status: {status}); "
                "a train run writes model.npz when it ends"
            )
        load_run_model(run, 1)  # raises the "does not exist" message
    if not (run / "config.yaml").is_file():
        raise BadInput(f"--run: {run / 'config.yaml'} does not exist (expected a train run folder with model.npz and config.yaml)")
    stored = config.load_config(run / "config.yaml", [], schema=VanishingConfig)
    for key in (k for k in NETWORK_KEYS if k in given):
        if config.coerce(VanishingConfig, key, given[key]) != getattr(stored, key):
            raise BadInput(f"{key}: cannot be changed with --run (the network comes from the run's model.npz, "
                           f"trained with {key}={getattr(stored, key)})")
    cfg = config.load_config(run / "config.yaml", overrides, schema=VanishingConfig)
    params = load_run_model(run, cfg.hidden, cfg.dtype, cfg.model)
    if unfinished:
        err_console.print(
            f"warning: the run in {run} did not finish (meta.json status: {status}); "
            "its model.npz may not be the trained network you expect",
            markup=False, highlight=False, soft_wrap=True,
        )
    return cfg, params


def _load_beside(beside: Path, cfg: VanishingConfig, from_run: bool) -> tuple[dict[str, np.ndarray], int, str]:
    """The trained RNN of ``--beside``: its weights (in ``cfg.dtype``), hidden size and a description.

    ``from_run``: whether ``cfg`` comes from ``--run`` (then a model other than lstm means the
    two folders were given the wrong way round).

    Raises
    ------
    BadInput
        If ``cfg.model`` is not lstm, or the folder is not a finished train run of model=rnn
        with a readable model.npz.
    """
    if cfg.model != "lstm":
        whose = "the network of --run is an RNN; --run takes the LSTM run and --beside the RNN run" if from_run else \
            "give model=lstm"
        raise BadInput(f"--beside: only beside an LSTM (it puts a trained RNN next to it); {whose}")
    what = "expected a train run folder of model=rnn with model.npz and config.yaml"
    if not beside.is_dir():
        raise BadInput(f"--beside: {str(beside)!r} is not a folder ({what})")
    if not (beside / "config.yaml").is_file():
        raise BadInput(f"--beside: {beside / 'config.yaml'} does not exist ({what})")
    rnn_cfg = config.load_config(beside / "config.yaml", [], schema=VanishingConfig)
    if rnn_cfg.model != "rnn":
        raise BadInput(f"--beside: {beside} is a run of model={rnn_cfg.model} ({what})")
    params = load_run_model(beside, rnn_cfg.hidden, cfg.dtype, "rnn")
    text = f"trained with {rnn_cfg.optimizer}, lr={rnn_cfg.lr:g} at T={_train_T(beside)} (run {beside.name})"
    return params, rnn_cfg.hidden, text


def _csv_text(s: VanishingSummary) -> str:
    rho_power = s.spectral_radius_R ** (s.t - 1.0)
    cols = (s.t, s.jacobian_median, s.jacobian_max, s.bound, s.error_median, s.error_max, rho_power)
    lines = [",".join(CSV_COLUMNS)]
    for i in range(len(s.t)):
        lines.append(",".join([str(int(cols[0][i]))] + [repr(float(c[i])) for c in cols[1:]]))
    return "\n".join(lines) + "\n"


LSTM_CSV_COLUMNS = (
    "t", *(f"lstm_{k}_median" for k in LSTM_JACOBIANS), "lstm_error_c_median", "lstm_error_a_median",
    "rnn_jacobian_norm_median", "rnn_bound", "rnn_error_norm_median",
)


def _lstm_csv_text(s: LSTMVanishingSummary, r: VanishingSummary) -> str:
    cols = [s.jacobian_median[k] for k in LSTM_JACOBIANS] + [s.error_c_median, s.error_a_median,
                                                             r.jacobian_median, r.bound, r.error_median]
    lines = [",".join(LSTM_CSV_COLUMNS)]
    for i in range(len(s.t)):
        lines.append(",".join([str(int(s.t[i]))] + [repr(float(c[i])) for c in cols]))
    return "\n".join(lines) + "\n"


def _show_lstm(s: LSTMVanishingSummary, r: VanishingSummary, cfg: VanishingConfig, network: str,
               rnn_text: str) -> None:
    # Each header on two lines and no column ever shortened: one line would not fit 80
    # terminal columns, and Rich then cut the norms' names ("‖dc(t)/dc(1)…"). Without the
    # outer edge the table is 79 cells wide for T < 100.
    table = Table(
        title=f"Error flow: LSTM ({cfg.hidden} cells, {network}) next to the RNN ({rnn_text}), "
              f"T={len(s.t)}, n={s.n}",
        caption="medians over the n sequences; state = d(a(t), c(t))/d(a(1), c(1)); carousel = max over cells "
                "of the product of forget gates f(2..t)",
        show_edge=False,
    )
    for col in ("t", "LSTM\n‖dc(t)/dc(1)‖₂", "LSTM\n‖da(t)/da(1)‖₂", "LSTM\n‖state‖₂", "carousel",
                "RNN\n‖da(t)/da(1)‖₂"):
        table.add_column(col, justify="right", no_wrap=True)
    for t in _table_steps(len(s.t)):
        i = t - 1
        m = s.jacobian_median
        table.add_row(str(t), f"{m['cc'][i]:.3e}", f"{m['aa'][i]:.3e}", f"{m['state'][i]:.3e}",
                      f"{m['carousel'][i]:.3e}", f"{r.jacobian_median[i]:.3e}")
    console.print(table)


def _table_steps(T: int) -> list[int]:
    step = max(1, math.ceil(T / 4))
    return sorted(set(range(1, min(T, 4) + 1)) | set(range(step, T + 1, step)) | {T})


def _network_text(cfg: VanishingConfig, run: Path | None) -> str:
    bias = f", forget bias {cfg.forget_bias:g}" if cfg.model == "lstm" else ""
    if run is not None:
        return f"trained with {cfg.optimizer}, lr={cfg.lr:g} at T={_train_T(run)} (run {run.name})"
    if cfg.init == "uniform":
        return f"fresh init uniform ±{cfg.init_scale:g}{bias}"
    return f"fresh init {cfg.init}{bias}"


def _train_T(run: Path) -> object:
    """The T the run was trained at, read from its config.yaml (already validated)."""
    return config.load_yaml(run / "config.yaml").get("T", "?")


def _show(s: VanishingSummary, cfg: VanishingConfig, network: str) -> None:
    table = Table(
        title=f"Vanishing gradient: {cfg.hidden} hidden, {network}, T={len(s.t)}, n={s.n}",
        caption="median / max over the n sequences; L is the loss at the sequence end",
    )
    for col in ("t", "median ‖da(t)/da(1)‖₂", "max", "bound ‖R‖₂^(t-1)", "median ‖dL/da(t)‖", "max"):
        table.add_column(col, justify="right")
    for t in _table_steps(len(s.t)):
        i = t - 1
        table.add_row(
            str(t), f"{s.jacobian_median[i]:.3e}", f"{s.jacobian_max[i]:.3e}", f"{s.bound[i]:.3e}",
            f"{s.error_median[i]:.3e}", f"{s.error_max[i]:.3e}",
        )
    console.print(table)
    factor = s.per_step_factor()
    shrink = f"; median norm: ×{factor:.4g} per step (geometric mean)" if factor is not None else ""
    console.print(f"‖R‖₂ = {s.spectral_norm_R:.4g}, largest |eigenvalue| ρ(R) = {s.spectral_radius_R:.4g}{shrink}")


def vanishing(
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[T=20] [n=200] [key=value ...]",
            help="T (sequence length), n (number of sequences), seed, dtype (float64/float32) and the network keys model "
                 "(rnn/lstm), hidden, init, init_scale, forget_bias.",
        ),
    ] = None,
    run: Annotated[
        Path | None,
        typer.Option("--run", help="A train run folder: use its model.npz (W, R, V) and config.yaml instead of a fresh initialisation."),
    ] = None,
    beside: Annotated[
        Path | None,
        typer.Option("--beside", metavar="RNN_RUN", help="With model=lstm: a train run folder of model=rnn whose trained RNN is "
                     "shown beside the LSTM. (default: a fresh RNN of the LSTM's size and initialisation)"),
    ] = None,
    config_file: Annotated[Path | None, typer.Option("--config", help="YAML config file (the keys of frnn train, plus n).")] = None,
    runs_dir: Annotated[str, typer.Option("--runs-dir", metavar="DIR", callback=folder_name, help="Parent folder of the new run folder.")] = "runs",
    seed: Annotated[
        str | None, typer.Option(help="Seed of the fresh weights and of the n sequences, decimal or hex (same as seed=S).")
    ] = None,
) -> None:
    """Measure how the gradient vanishes through time: ||da(t)/da(1)||_2 against its bound ||R||_2^(t-1).

    On n task sequences of length T, builds the exact Jacobian da(t)/da(1) of every sequence as the product of the per-step Jacobians diag(1 - a(k)^2) R, and reports per t the median and maximum of its spectral norm, the bound ||R||_2^(t-1), and the norm of the back-propagated error ||dL/da(t)|| for the loss at the sequence end. The network is a fresh initialisation from the config (default: 32 hidden, uniform ±0.01), or with --run a trained one; it runs in `dtype` (a trained run's own by default), while the Jacobian products are always formed in float64, which resolves them far below float32's range. Fresh weights and sequences come from seeds derived from `seed`.

    With model=lstm the same sequences go through the LSTM and, for comparison, through an RNN of the same size and initialisation (or the trained RNN of --beside): per t the LSTM's ||dc(t)/dc(1)||_2, ||da(t)/da(1)||_2, its whole state Jacobian and the product of its forget gates (the constant error carousel), next to the RNN's ||da(t)/da(1)||_2, in one table and one figure (the LSTM's Jacobians cost about 0.1 s per sequence at T = 100; use a smaller n for long T).

    Writes vanishing.csv (one row per t), plots/vanishing.png, config.yaml and meta.json into a new run folder. Exit 1 if any sequence violates the bound (a bug), 2 on bad input. For a trained network: frnn vanishing --run runs/<train run folder>; a trained LSTM beside a trained RNN: frnn vanishing --run runs/<lstm run> --beside runs/<rnn run>.

    Example: frnn vanishing T=20 n=200
    """
    from frnn_cli.plots.vanishing import plot_vanishing, plot_vanishing_lstm  # matplotlib only when run

    cfg, params = _resolve(run, config_file, overrides or [], seed)
    beside_params = _load_beside(beside, cfg, run is not None) if beside is not None else None
    check_fits(vanishing_bytes(cfg.T, cfg.n, cfg.hidden * (2 if cfg.model == "lstm" else 1)),
               f"frnn vanishing with T={cfg.T}, n={cfg.n}, hidden={cfg.hidden}")
    init_ss, data_ss = np.random.SeedSequence(cfg.seed).spawn(2)
    net = networks.get(cfg.model)
    if params is None:
        params = net.init_params(1, cfg.hidden, 1, np.random.default_rng(init_ss), init=cfg.init,
                                 init_scale=cfg.init_scale, dtype=cfg.dtype, forget_bias=cfg.forget_bias)
    # The network runs in cfg.dtype; summarize forms the Jacobian products in float64 (see frnn_cli.vanishing).
    x, y = sample_batch(np.random.default_rng(data_ss), cfg.n, cfg.T, cfg.dtype)
    network = _network_text(cfg, run)
    lstm_s = None
    rnn_text = f"{cfg.hidden} units, same init"
    if beside_params is not None:
        rnn_params, rnn_hidden, rnn_network = beside_params
        rnn_text = f"{rnn_hidden} units, {rnn_network}"
    elif cfg.model == "lstm":
        # The RNN beside it: same size, initialisation and seed, the same sequences.
        rnn_params = networks.get("rnn").init_params(1, cfg.hidden, 1, np.random.default_rng(init_ss), init=cfg.init,
                                                     init_scale=cfg.init_scale, dtype=cfg.dtype)
    else:
        rnn_params = params

    folder = new_run_dir(runs_dir, "vanishing")
    meta = {"kind": "vanishing", **base_meta(cfg.seed)}
    meta.update(network=network, model=cfg.model, source_run=str(run.resolve()) if run is not None else None,
                T=cfg.T, n=cfg.n)
    if cfg.model == "lstm":
        meta.update(rnn=rnn_text, rnn_run=str(beside.resolve()) if beside is not None else None)
    atomic_write_text(folder / "config.yaml", config.dump_yaml(cfg))
    atomic_write_json(folder / "meta.json", meta)
    try:
        s = summarize(rnn_params, x, y)
        (folder / "plots").mkdir()
        if cfg.model == "lstm":
            p64 = {k: v.astype(np.float64) for k, v in params.items()}
            lstm_s = lstm_summarize(p64, x.astype(np.float64), y.astype(np.float64))
            atomic_write_text(folder / "vanishing.csv", _lstm_csv_text(lstm_s, s))
            plot_vanishing_lstm(lstm_s, s, folder / "plots" / "vanishing.png", hidden=cfg.hidden, network=network,
                                rnn_text=rnn_text)
        else:
            atomic_write_text(folder / "vanishing.csv", _csv_text(s))
            plot_vanishing(s, folder / "plots" / "vanishing.png", hidden=cfg.hidden, network=network)
    except BaseException as exc:
        finish_meta(folder, meta, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", error=repr(exc))
        raise
    extra = {}
    if lstm_s is not None:
        extra = {f"lstm_{k}_median_T": float(lstm_s.jacobian_median[k][-1]) for k in LSTM_JACOBIANS}
    finish_meta(
        folder,
        meta,
        "failed" if s.violations else "completed",
        spectral_norm_R=s.spectral_norm_R,
        spectral_radius_R=s.spectral_radius_R,
        per_step_factor=s.per_step_factor(),
        jacobian_norm_median_T=float(s.jacobian_median[-1]),
        bound_T=float(s.bound[-1]),
        bound_violations=len(s.violations),
        **extra,
    )

    if lstm_s is not None:
        _show_lstm(lstm_s, s, cfg, network, rnn_text)
    else:
        _show(s, cfg, network)
    if s.violations:
        t, b, norm, bound = s.violations[0]
        err_console.print(f"[red]BUG:[/] {len(s.violations)} (t, sequence) pairs violate the bound")
        console.print(f"run folder: {folder}", soft_wrap=True)
        raise ExperimentFailed(
            f"||da({t})/da(1)||_2 = {norm:.6g} of sequence {b} exceeds the bound ||R||_2^{t - 1} = {bound:.6g} "
            f"({len(s.violations)} violations in all): this is a bug in the Jacobian or the bound; results in {folder}"
        )
    which = "the RNN's" if lstm_s is not None else "the"
    console.print(f"[green]{which} bound holds[/] for all {s.n} sequences at every t = 1..{cfg.T}")
    console.print(f"run folder: {folder}", soft_wrap=True)
