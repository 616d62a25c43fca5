"""``frnn train``: one training run into a new run folder, with progress, summary and verdict."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from frnn_cli import config
from frnn_cli.cli.common import console, err_console, folder_name, new_run_dir
from frnn_cli.errors import ExperimentFailed
from frnn_cli.resources import check_fits, train_bytes
from frnn_cli.experiment.verdict import trained_past_init
from frnn_cli.runs import run_train_job
from frnn_cli.train import EvalRecord, check_config, describe

#: Plain progress lines when stderr is not a terminal: about this many per run.
PLAIN_LINES = 10


class _PlainProgress:
    """Progress as a few plain lines on stderr (no escape codes), for logs and pipes."""

    def __init__(self, steps: int, unit: str = "step") -> None:
        self.steps = steps
        self.unit = unit
        self.every = max(1, steps // PLAIN_LINES)
        self.next_at = 0
        self.last: EvalRecord | None = None
        self.printed: EvalRecord | None = None

    def __call__(self, rec: EvalRecord) -> None:
        self.last = rec
        if rec.step >= self.next_at or rec.step == self.steps:
            self._print(rec)
            self.next_at = (rec.step // self.every + 1) * self.every

    def finish(self) -> None:
        """Print the last evaluation if it was not printed (the run stopped early)."""
        if self.last is not None and self.last is not self.printed:
            self._print(self.last)

    def _print(self, rec: EvalRecord) -> None:
        train = "" if rec.train_loss != rec.train_loss else f"  train loss {rec.train_loss:.4f}"
        err_console.print(
            f"{self.unit} {rec.step}/{self.steps}{train}  val loss {rec.val_loss:.4f}  val acc {rec.val_acc:.3f}",
            markup=False, highlight=False, soft_wrap=True,
        )
        self.printed = rec


def _p_eq(p: float) -> str:
    return f"= {p:.3g}" if p > 0 else "< 1e-300"


def _p_text(p: float) -> str:
    # 2000 of 2000 correct has p = 2^-2000, below the smallest float: say so instead of "0".
    return f"{p:.3g}" if p > 0 else "< 1e-300"


def _trial_text(summary: dict) -> str:
    """Which drawn network a guessing run tested: "trial 34 (k = 33)", unsolved "trial 34 of 100 (k = 33)"."""
    k = summary.get("trial")
    if k is None:  # a summary.json written before the field existed
        return f"trial {summary['best_step']}"
    of = f" of {summary['trials']}" if summary["stop_reason"] != "solved" else ""
    return f"trial {k + 1}{of} (k = {k})"


def _summary_table(summary: dict, steps: int) -> Table:
    best, final, test = summary["best"], summary["final"], summary["test"]
    table = Table(title=f"frnn train: {summary['status']}", show_header=True)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    stop = {"steps": "all done", "converged": "stopped early: val acc 1.0 and val loss < stop_loss",
            "patience": "stopped early: no new best for `patience` evaluations",
            "diverged": "stopped: diverged",
            "solved": "a trial classified every screening sequence"}[summary["stop_reason"]]
    guess = summary.get("trials") is not None
    unit = "trials" if guess else "steps"
    rows = [
        (f"{unit} run", f"{summary['steps_done']} of {steps}, {stop}"),
        ("best checkpoint (by validation)" if not guess else "the network tested",
         f"step {summary['best_step']}" if not guess else _trial_text(summary)),
        ("  validation accuracy / loss", f"{best['val_acc']:.3f} / {best['val_loss']:.4f}"),
        ("  ||R||_2 / ||da(T)/da(1)||_2", f"{best['R_spectral_norm']:.3g} / {best['jacobian_norm']:.3g}"),
        (f"last evaluation ({'after trial' if guess else 'step'} {final['step']})",
         f"val acc {final['val_acc']:.3f} / loss {final['val_loss']:.4f}"),
        (f"test accuracy ({test['n']} fresh sequences)", f"{test['accuracy']:.4f} ({test['correct']}/{test['n']})"),
        ("test loss (nats; chance 0.693)", f"{test['loss']:.4f}"),
        ("p-value (one-sided binomial vs 0.5)", _p_text(test["p_value"])),
        ("training + test time", f"{summary['seconds']:.1f} s"),
    ]
    seen = [(k, summary.get(f"{k.lower()}_sequences")) for k in ("ST1", "ST2")]
    for name, n in seen if not guess else []:
        rows.append((f"sequences seen until {name} (LSTM paper)", f"{n:,}" if n is not None else "not reached"))
    if summary["divergence"]:
        d = summary["divergence"]
        rows.insert(1, ("diverged", f"step {d['step']}: {d['reason']}"))
    for k, v in rows:
        table.add_row(k, v)
    return table


def train(
    overrides: Annotated[
        list[str] | None,
        typer.Argument(metavar="[key=value ...]", help="Config keys to override, e.g. T=5 lr=0.3 optimizer=adam."),
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", help="YAML file with any subset of the keys (the rest: defaults).")
    ] = None,
    runs_dir: Annotated[str, typer.Option("--runs-dir", metavar="DIR", callback=folder_name, help="Parent folder of the new run folder.")] = "runs",
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Draw plots/learning_curves.png and gradient_norms.png.")] = True,
) -> None:
    """Train the network once with BPTT and test the best checkpoint against chance.

    Settings come from the built-in defaults, then --config, then key=value overrides. Keys and their defaults: {keys}. Writes runs/<time>-train-<id>/ with config.yaml, meta.json, metrics.csv, summary.json, model.npz and plots/. Exit 0 when training completed, 1 when it diverged, 2 on bad input, 130 when interrupted.

    Example: frnn train --config configs/default.yaml T=2 lr=1
    """
    cfg = config.load_config(config_file, overrides or [], schema=config.Config)
    for note in config.ignored_keys(config.given_keys(config_file, overrides or []), cfg):
        err_console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    check_config(cfg)
    check_fits(
        train_bytes(cfg.T, cfg.hidden, cfg.batch_size, cfg.n_val, cfg.n_test, itemsize=4 if cfg.dtype == "float32" else 8,
                    gates=4 if cfg.model == "lstm" else 1, n_screen=cfg.screen_n if cfg.optimizer == "guess" else 0),
        f"a run with T={cfg.T}, hidden={cfg.hidden}, batch_size={cfg.batch_size}, n_val={cfg.n_val}, n_test={cfg.n_test}"
        + (f", screen_n={cfg.screen_n}" if cfg.optimizer == "guess" else ""),
    )
    run_dir = new_run_dir(runs_dir, "train")
    err_console.print(f"training {describe(cfg)}", markup=False, highlight=False, soft_wrap=True)
    err_console.print(f"run folder: {run_dir}", markup=False, highlight=False, soft_wrap=True)
    argv = ["frnn", *sys.argv[1:]] if sys.argv and Path(sys.argv[0]).name == "frnn" else None
    last: list[EvalRecord] = []

    try:
        if err_console.is_terminal:
            progress = Progress(
                TextColumn("guessing" if cfg.optimizer == "guess" else "training"), BarColumn(), MofNCompleteColumn(),
                TextColumn("trials" if cfg.optimizer == "guess" else "steps"),
                TextColumn("val acc {task.fields[acc]}"), TimeElapsedColumn(),
                console=err_console, transient=True,
            )
            with progress:
                task = progress.add_task("train", total=cfg.steps, acc="-")

                def show(rec: EvalRecord) -> None:
                    last.append(rec)
                    progress.update(task, completed=rec.step, acc=f"{rec.val_acc:.3f}")

                summary = run_train_job(cfg, run_dir, plots=plots, argv=argv, callback=show)
        else:
            plain = _PlainProgress(cfg.steps, "trials" if cfg.optimizer == "guess" else "step")

            def show(rec: EvalRecord) -> None:
                last.append(rec)
                plain(rec)

            summary = run_train_job(cfg, run_dir, plots=plots, argv=argv, callback=show)
            plain.finish()
    except KeyboardInterrupt:
        at = f" after {'trial' if cfg.optimizer == 'guess' else 'step'} {last[-1].step}" if last else ""
        err_console.print(f"interrupted{at}; files written so far are in {run_dir}", markup=False, highlight=False,
                          soft_wrap=True)
        raise

    console.print(_summary_table(summary, cfg.steps))
    test = summary["test"]
    colour = "green" if test["better_than_chance"] else "red"
    if summary.get("trials") is not None:
        which = f"{'the winning' if summary['stop_reason'] == 'solved' else 'the most accurate'} network, " \
                + _trial_text(summary)
    else:
        which = "best checkpoint" if summary["status"] == "completed" else "best checkpoint before the divergence"
        which += f" at step {summary['best_step']}"
    console.print(
        f"[bold {colour}]{test['verdict']}[/]: test accuracy {test['accuracy']:.4f}, p {_p_eq(test['p_value'])} "
        f"(T={cfg.T}, {which})",
        soft_wrap=True,
    )
    if summary["status"] == "completed" and not trained_past_init(summary):
        console.print(
            "note: the best checkpoint is the untrained initial network (step 0); training never improved on it, "
            "so this verdict says nothing about learning (frnn sweep does not count such a run as learned).",
            markup=False, highlight=False, soft_wrap=True,
        )
    mech = summary.get("mechanism") or {}
    if mech.get("label") in ("gradient", "latch", "guess", "readout"):
        console.print(
            f"how it learned: {mech['label']} ({mech['reason']}; rule in docs/learning_mechanism.md)",
            markup=False, highlight=False, soft_wrap=True,
        )
    jac = summary["best"]["jacobian_norm"]
    if not test["better_than_chance"] and jac is not None and jac < 1e-2:
        console.print(
            f"why: the class is only in x(1), and the error signal reaching a(1) is at most ||da(T)/da(1)||_2 = {jac:.2g} "
            "times the one at a(T) (best checkpoint): the vanishing gradient. Try init=orthogonal, or optimizer=adam lr=0.01.",
            markup=False, highlight=False, soft_wrap=True,
        )
    console.print(f"run folder: {run_dir}", markup=False, highlight=False, soft_wrap=True)
    if summary["status"] == "diverged":
        d = summary["divergence"]
        raise ExperimentFailed(
            f"training diverged at step {d['step']}: {d['reason']} (try a smaller lr or clip=1); "
            f"results are in {run_dir}"
        )


#: The command's help: its docstring with every key and its default filled in from the schema.
HELP = (train.__doc__ or "").replace("{keys}", config.describe_keys(config.Config))
