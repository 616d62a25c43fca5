"""The plan of a sweep: its spec (base config, grid, axis, seeds) and the jobs it expands to.

The experiment of the assignment: "Start at sequence length 1, tune the learning rate and the
number of update steps; increase T by one and tune again. What is the maximal T at which the
network is better than random?" A sweep's *spec* names the axis (``T`` by default), the tuned
keys (a learning-rate grid by default) and the number of seeds; :func:`plan` expands it into
one :class:`Job` per setting and seed, with seeds from ``np.random.SeedSequence``
(:func:`frnn_cli.experiment.grid.job_seed`), so results do not depend on the number of
workers or on the order in which jobs finish. No execution and no verdict here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from frnn_cli import config
from frnn_cli.config import Config
from frnn_cli.errors import BadInput
from frnn_cli.experiment import grid

#: Default learning-rate grid when the sweep does not set one: log-spaced (x3), 0.1 to 243, wide
#: enough that neither edge decides the answer: at 0.1 plain SGD is too slow to learn T >= 2
#: within the steps, and from 27 on it learns every T by a weight blow-up into a latch, which
#: the verdict labels (README, "How a network learned"; docs/learning_mechanism.md).
DEFAULT_LR = (0.1, 0.3, 1.0, 3.0, 9.0, 27.0, 81.0, 243.0)
#: Default sequence lengths when the sweep does not set the axis.
DEFAULT_T = tuple(range(1, 21))
#: Base settings a sweep (and every recipe of frnn compare) uses unless its config file or
#: command line sets them. An evaluation (validation set + Jacobian norm) costs as much as ~30
#: updates at T = 20; every 100 steps keeps it near 10 % of a job and still locates the best
#: checkpoint to 100 steps. 1500 steps per run: the latest learner of the reference setting at
#: T = 3 (seed 0..2) converged at step 1500 of 2000. float32: 1.3-2x less CPU than float64, and
#: the same verdicts -- learned and learned by gradient at every T, seeds beating chance -- for
#: the reference, adam and glorot sweeps (benchmarks/README.md); frnn train keeps float64.
SWEEP_DEFAULTS = {"eval_every": 100, "steps": 1500, "dtype": "float32"}
SPEC_FILE = "sweep.yaml"
#: A grid larger than this is refused: it is almost surely a typo (T=1..100000), and even
#: listing its jobs would take minutes.
MAX_JOBS = 100_000


@dataclass
class SweepSpec:
    """Everything that defines a sweep's results (compared on ``--resume``).

    Attributes
    ----------
    base : Config
        Settings shared by every job (file + single-valued overrides).
    grid : dict key -> list
        Swept keys with two or more values, the axis first.
    axis : str
        The key results are reported against (``T``).
    seeds : int
        Replicates per setting.
    """

    base: Config
    grid: dict[str, list[Any]]
    axis: str = "T"
    seeds: int = 3

    @property
    def tuned(self) -> list[str]:
        """Swept keys other than the axis."""
        return [k for k in self.grid if k != self.axis]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``sweep.yaml`` (loads back with :func:`spec_from_dict`)."""
        return {"axis": self.axis, "seeds": self.seeds, "sweep": self.grid, **config.to_dict(self.base)}


def _split_sweep_keys(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], Any, Any]:
    """Split a sweep mapping into (config keys, ``sweep:`` grid, ``seeds``, ``axis``).

    Raises
    ------
    BadInput
        If ``sweep:`` is not a mapping.
    """
    data = dict(data)
    sweep_grid = data.pop("sweep", None) or {}
    if not isinstance(sweep_grid, dict):
        raise BadInput("sweep: expected a mapping of keys to values, lists or ranges a..b")
    return data, sweep_grid, data.pop("seeds", None), data.pop("axis", None)


def check_no_idle_lists(base: Config, grid_: dict[str, list[Any]]) -> None:
    """Refuse a list of values for a key that some of the jobs do not use.

    Such jobs would be trained once per value with identical results (e.g. ``lr=0.1,1`` with
    ``optimizer=guess``, which has no learning rate, or ``momentum=0.5,0.9`` with plain SGD),
    and the tuned value "chosen" among them would mean nothing.

    Raises
    ------
    BadInput
        Naming the key, the setting that ignores it and what to do instead.
    """
    for key, values in grid_.items():
        if len(values) < 2:
            continue
        decider = config.decider(key)
        if decider is None:
            continue
        idle = config.unused_by(key, list(grid_.get(decider, [getattr(base, decider)])))
        if idle:
            raise BadInput(
                f"{key}={compact_values(values)}: "
                f"{decider}={idle[0]} does not use {key}, so its jobs would "
                f"repeat once per {key} value; give one {key} value, or run {decider}={idle[0]} on its own "
                f"(frnn compare runs settings with different grids side by side)"
            )


def _check_seeds(seeds: Any) -> int:
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise BadInput(f"seeds: expected an integer >= 1, got {seeds!r}")
    return seeds


def spec_from_dict(data: dict[str, Any]) -> SweepSpec:
    """Rebuild a :class:`SweepSpec` from :meth:`SweepSpec.to_dict` output (or a sweep YAML).

    Raises
    ------
    BadInput
        On any invalid key or value.
    """
    values, sweep_grid, seeds, axis = _split_sweep_keys(data)
    base = config.build(Config, values)
    seeds = _check_seeds(3 if seeds is None else seeds)
    return _make_spec(base, grid.parse_grid(Config, sweep_grid), axis or "T", seeds, defaults=False)


def _make_spec(base: Config, g: dict[str, list[Any]], axis: str, seeds: int, defaults: bool = True) -> SweepSpec:
    if axis not in config.field_names(Config):
        config.coerce(Config, axis, None)  # raises the unknown-key error with a suggestion
    g = dict(g)
    if defaults:
        axis_default = {"T": DEFAULT_T, "lr": DEFAULT_LR}.get(axis, [getattr(base, axis)])
        g.setdefault(axis, list(axis_default))
        # Random guessing has no learning rate: a default lr grid would only repeat its jobs.
        if any(o != "guess" for o in g.get("optimizer", [base.optimizer])):
            g.setdefault("lr", list(DEFAULT_LR))
    singles = {k: v[0] for k, v in g.items() if len(v) == 1 and k != axis}
    base = replace(base, **singles)
    swept = {axis: g[axis], **{k: v for k, v in g.items() if k != axis and len(v) > 1}}
    if axis == "T" and "T" in swept:
        swept["T"] = sorted(swept["T"])
    check_no_idle_lists(base, swept)
    return SweepSpec(base=base, grid=swept, axis=axis, seeds=seeds)


def resolve_spec(
    config_file: str | Path | None, words: list[str], axis: str | None, seeds: int | None
) -> SweepSpec:
    """The sweep spec from a YAML file (keys + ``sweep:`` + ``seeds:``/``axis:``) and ``key=VALUES`` words.

    Command-line words win over the file's base keys and grid, key by key; ``--axis`` and
    ``--seeds`` win over the file. Without a learning-rate grid, :data:`DEFAULT_LR` is used
    (also as the axis with ``--axis lr``), unless every job guesses (``optimizer=guess``); without the axis, ``T=1..20``; keys in :data:`SWEEP_DEFAULTS` not set anywhere take
    those values instead of the :class:`Config` defaults.

    Raises
    ------
    BadInput
        Any invalid file, key, value or range.
    """
    file_data: dict[str, Any] = config.load_yaml(config_file) if config_file is not None else {}
    if config_file is not None and not file_data:
        config.note_empty(config_file)
    try:
        file_values, file_grid, file_seeds, file_axis = _split_sweep_keys(file_data)
        base_values = dict(SWEEP_DEFAULTS)
        base_values.update({str(k): config.coerce(Config, str(k), v) for k, v in file_values.items()})
        g = grid.parse_grid(Config, file_grid)
        if file_seeds is not None:
            _check_seeds(file_seeds)
    except BadInput as exc:
        raise BadInput(f"{config_file}: {exc}") from None
    g.update(grid.parse_grid(Config, words))
    seeds = _check_seeds(seeds if seeds is not None else (file_seeds if file_seeds is not None else 3))
    return _make_spec(config.build(Config, base_values), g, axis or file_axis or "T", seeds)


@dataclass(frozen=True)
class Job:
    """One training run of the sweep.

    Attributes
    ----------
    job_id : str
        Folder name under ``jobs/``, e.g. ``T07_lr0.3_r1``.
    setting : dict
        Values of the swept keys (axis included).
    replicate : int
        Seed index r = 0..seeds-1.
    cfg : Config
        The job's full config (its seed from :func:`frnn_cli.grid.job_seed`).
    """

    job_id: str
    setting: dict[str, Any]
    replicate: int
    cfg: Config


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def n_jobs(spec: SweepSpec) -> int:
    """Number of jobs of the sweep: the product of the grid's lengths times the seeds."""
    return math.prod(len(v) for v in spec.grid.values()) * spec.seeds


def plan(spec: SweepSpec) -> list[Job]:
    """Every job of the sweep, axis value by axis value (so results for small T come first).

    Raises
    ------
    BadInput
        If the sweep has more than :data:`MAX_JOBS` jobs.
    """
    if n_jobs(spec) > MAX_JOBS:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in spec.grid.items())
        raise BadInput(f"the grid has {n_jobs(spec):,} jobs ({sizes} x {spec.seeds} seeds); at most {MAX_JOBS:,} are allowed")
    from frnn_cli.train import check_config

    jobs = []
    checked: set[tuple] = set()
    for setting in grid.expand(spec.grid):
        base_seed = setting.get("seed", spec.base.seed)  # a swept seed is the base of its replicates
        for r in range(spec.seeds):
            cfg = replace(spec.base, **{**setting, "seed": grid.job_seed(base_seed, r)})
            if (cfg.freeze, cfg.model, cfg.optimizer) not in checked:  # settings only wrong together
                check_config(cfg)
                checked.add((cfg.freeze, cfg.model, cfg.optimizer))
            job_id = "_".join(f"{k}{_fmt(v)}" for k, v in setting.items()) + f"_r{r}"
            jobs.append(Job(job_id, setting, r, cfg))
    return jobs


def check_memory(jobs: list[Job], workers: int) -> int:
    """Refuse a sweep whose largest job, times the workers running at once, does not fit in memory.

    Returns
    -------
    int, the estimated bytes (see :func:`frnn_cli.resources.check_fits`).

    Raises
    ------
    BadInput
        If it does not fit; the message names the largest job's sizes.
    """
    from frnn_cli.resources import check_fits, train_bytes

    def parts(c: Config) -> dict[str, int]:
        return train_bytes(c.T, c.hidden, c.batch_size, c.n_val, c.n_test, itemsize=4 if c.dtype == "float32" else 8,
                           gates=4 if c.model == "lstm" else 1, n_screen=c.screen_n if c.optimizer == "guess" else 0)

    biggest = max(jobs, key=lambda j: sum(parts(j.cfg).values()))
    c = biggest.cfg
    return check_fits(
        parts(c), f"the sweep's largest job (T={c.T}, hidden={c.hidden}, batch_size={c.batch_size}, n_val={c.n_val}, "
        f"n_test={c.n_test})", copies=min(workers, len(jobs)),
    )


def describe_plan(spec: SweepSpec, n_jobs: int) -> str:
    """The plan in one phrase, e.g. ``480 jobs: T=1..20 x lr=0.1,0.3,1,3,9,27,81,243 x 3 seeds``."""

    def values(k: str) -> str:
        v = spec.grid[k]
        if all(isinstance(x, int) for x in v) and len(v) > 2 and v == list(range(v[0], v[-1] + 1)):
            return f"{v[0]}..{v[-1]}"
        return ",".join(_fmt(x) for x in v)

    parts = [f"{k}={values(k)}" for k in spec.grid]
    return f"{n_jobs} jobs: {' x '.join(parts)} x {spec.seeds} seeds"


def dump_spec(spec: SweepSpec) -> str:
    """``sweep.yaml``: the resolved spec, readable by ``frnn sweep --config``."""
    return yaml.safe_dump(spec.to_dict(), sort_keys=False, default_flow_style=None)


def check_resume(stored: SweepSpec, requested: SweepSpec | None, asked: set[str] | None = None) -> SweepSpec:
    """The spec to resume with: the stored one, after checking that what the user asked for
    again agrees with it.

    Parameters
    ----------
    stored : SweepSpec, from the sweep folder
    requested : SweepSpec or None
        The spec of this command line (None: nothing asked, resume as stored).
    asked : set of str, optional
        What the command line set: config keys (:func:`frnn_cli.config.given_keys`), and
        "seeds" / "axis" for ``--seeds`` / ``--axis``. Only these are compared -- the rest of
        ``requested`` holds defaults the user never gave (T=1..20, the default lr grid), which
        need not match. None compares everything.

    Raises
    ------
    BadInput
        If an asked key differs (names the first, with both values).
    """
    if requested is None:
        return stored

    def values(spec: SweepSpec, key: str) -> list[Any]:
        if key == "seeds":
            return [spec.seeds]
        if key == "axis":
            return [spec.axis]
        return list(spec.grid.get(key, [getattr(spec.base, key)]))

    keys = sorted(asked) if asked is not None else ["seeds", "axis", *config.field_names(Config)]
    for key in keys:
        there, now = values(stored, key), values(requested, key)
        if there != now:
            raise BadInput(
                f"--resume: {key} differs from the stored sweep ({compact_values(there)} there, "
                f"{compact_values(now)} now); give --resume DIR alone to finish it as it was"
            )
    return stored


def compact_values(values: list[Any]) -> str:
    """Values as a sweep grid writes them: "1,2,3", "0.1,0.3" (floats in %g)."""
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def load_spec(sweep_dir: Path) -> SweepSpec:
    """Read ``sweep.yaml`` of an existing sweep folder.

    Raises
    ------
    BadInput
        If the folder or its ``sweep.yaml`` is missing or invalid.
    """
    path = Path(sweep_dir) / SPEC_FILE
    if not path.is_file():
        raise BadInput(f"--resume: {str(sweep_dir)!r} is not a sweep folder (no {SPEC_FILE})")
    return spec_from_dict(config.load_yaml(path))


