"""``frnn compare``: the remedies side by side -- one sweep per recipe, one table of the longest T.

A thin composition of the sweep's parts. Each recipe (:mod:`frnn_cli.experiment.recipes`)
becomes a :class:`~frnn_cli.experiment.plan.SweepSpec` over the same T grid and seeds, so
every recipe meets the same validation and test sequences for the same T and seed and the
same verdict; a difference between rows is the recipe's. All recipes' jobs go to one
executor, in increasing T (the cheap, decisive jobs first).

Skipping the hopeless: once a recipe has failed at two consecutive T values of its grid,
its jobs at larger T are not started and those T are recorded as ``skipped`` (``--no-skip``
runs everything). Whether a T is skipped is a pure function of the finished results -- two
failed T values before it -- so it does not depend on the number of workers or the order in
which jobs finish; a job that had already started at such a T is run but not counted.

Output, ``runs/<time>-compare-<id>/``: ``compare.yaml`` (the resolved recipes, T grid, seeds
and overrides), ``meta.json``, ``recipes/<name>/`` (one complete sweep folder per recipe),
``compare.csv`` (one row per recipe x T), ``summary.json`` (per recipe) and ``plots/``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from frnn_cli import config
from frnn_cli.config import Config
from frnn_cli.errors import BadInput
from frnn_cli.experiment import grid, plan, recipes, sweep, verdict
from frnn_cli.experiment.execute import SweepProgress, run_jobs
from frnn_cli.experiment.plan import Job, SweepSpec

#: The default T grid: far beyond 20, on a log-like scale.
DEFAULT_T = (1, 2, 3, 4, 5, 10, 20, 50, 100)
SPEC_FILE = "compare.yaml"
#: Consecutive failed T values after which a recipe's larger T are skipped.
SKIP_AFTER = 2


@dataclass
class CompareSpec:
    """Everything that defines a comparison's results (compared on ``--resume``).

    Attributes
    ----------
    recipes : list of Recipe
    T : list of int
        The T grid, increasing.
    seeds : int
    overrides : dict
        Single config values applied to every recipe's jobs (after the recipe's own ``set``).
    skip : bool
        Apply the "two failures in a row" rule.
    """

    recipes: list[recipes.Recipe]
    T: list[int]
    seeds: int = 3
    overrides: dict[str, Any] | None = None
    skip: bool = True

    def sweep_spec(self, recipe: recipes.Recipe) -> SweepSpec:
        """The recipe's sweep: sweep defaults, the recipe's keys, the overrides; T x its tuned grid."""
        values = {**plan.SWEEP_DEFAULTS, **recipe.set, **(self.overrides or {})}
        base = config.build(Config, values)
        g = {"T": list(self.T), **{k: list(v) for k, v in recipe.tune.items()}}
        singles = {k: v[0] for k, v in g.items() if k != "T" and len(v) == 1}
        base = replace(base, **singles)
        g = {k: v for k, v in g.items() if k == "T" or len(v) > 1}
        return SweepSpec(base=base, grid=g, axis="T", seeds=self.seeds)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``compare.yaml`` (loads back with :func:`spec_from_dict`)."""
        return {"T": list(self.T), "seeds": self.seeds, "skip": self.skip, "overrides": dict(self.overrides or {}),
                "recipes": {r.name: r.to_dict() for r in self.recipes}}


def spec_from_dict(data: dict[str, Any], where: str = SPEC_FILE) -> CompareSpec:
    """Rebuild a :class:`CompareSpec` from :meth:`CompareSpec.to_dict` output.

    Raises
    ------
    BadInput
        If a field is missing or invalid.
    """
    try:
        rs = [recipes.recipe_from_dict(name, entry, where) for name, entry in (data["recipes"] or {}).items()]
        overrides = {str(k): config.coerce(Config, str(k), v) for k, v in (data.get("overrides") or {}).items()}
        T = grid.parse_values(Config, "T", data["T"])
        seeds = data["seeds"]
    except (KeyError, TypeError, AttributeError) as exc:
        raise BadInput(f"{where}: not a compare spec (missing or bad {exc})") from None
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise BadInput(f"{where}: seeds: expected an integer >= 1, got {seeds!r}")
    return CompareSpec(recipes=rs, T=sorted(T), seeds=seeds, overrides=overrides, skip=bool(data.get("skip", True)))


def resolve_spec(words: list[str], names: list[str] | None, recipes_file: str | Path | None, seeds: int | None,
                 skip: bool) -> CompareSpec:
    """The comparison from the command line: ``T=...`` and single ``key=value`` overrides.

    Raises
    ------
    BadInput
        A bad word, a list for a key other than T (a tuned grid belongs to the recipe), a
        key that a selected recipe tunes (its grid would replace the value), an unknown
        recipe or a bad recipes file. A key that a recipe *sets* is replaced by the
        override (see :func:`replaced_settings`, printed with the plan).
    """
    parsed = grid.parse_grid(Config, words)
    T = sorted(parsed.pop("T", list(DEFAULT_T)))
    lists = [k for k, v in parsed.items() if len(v) > 1]
    if lists:
        raise BadInput(f"{lists[0]}: frnn compare takes one value per key besides T; a tuned grid belongs to a recipe "
                       "(see configs/recipes.yaml and --recipes-file)")
    rs = recipes.select(names, recipes_file)
    for key in parsed:  # a tuned grid would silently replace the single value
        tuners = [r.name for r in rs if key in r.tune]
        if tuners:
            raise BadInput(f"{key}: recipe {tuners[0]!r} tunes {key} over its own grid, so {key}={words_value(words, key)} "
                           f"would be lost; leave it out, or compare a recipe with another grid (--recipes-file)")
    if seeds is not None and seeds < 1:
        raise BadInput(f"--seeds: expected an integer >= 1, got {seeds}")
    spec = CompareSpec(recipes=rs, T=T, seeds=seeds or 3, overrides={k: v[0] for k, v in parsed.items()}, skip=skip)
    for r in rs:  # every recipe's jobs must be valid together with the overrides
        try:
            plan.plan(spec.sweep_spec(r))
        except BadInput as exc:
            raise BadInput(f"recipe {r.name!r}: {exc}") from None
    return spec


def words_value(words: list[str], key: str) -> str:
    """The value text of ``key=value`` among the command words (for messages)."""
    return next((w.split("=", 1)[1] for w in words if w.split("=", 1)[0].strip() == key), "?")


def replaced_settings(spec: CompareSpec) -> list[str]:
    """Recipe settings that an override replaces, as ``"lstm: steps=2000 -> 3000"`` (for the plan line)."""
    out = []
    for r in spec.recipes:
        for key, value in (spec.overrides or {}).items():
            if key in r.set and r.set[key] != value:
                out.append(f"{r.name}: {key}={r.set[key]} -> {value}")
    return out


def dump_spec(spec: CompareSpec) -> str:
    """``compare.yaml`` text."""
    return yaml.safe_dump(spec.to_dict(), sort_keys=False, default_flow_style=None)


def load_spec(folder: Path) -> CompareSpec:
    """Read ``compare.yaml`` of an existing compare folder.

    Raises
    ------
    BadInput
        If the folder or its ``compare.yaml`` is missing or invalid.
    """
    path = Path(folder) / SPEC_FILE
    if not path.is_file():
        raise BadInput(f"--resume: {str(folder)!r} is not a compare folder (no {SPEC_FILE})")
    return spec_from_dict(config.load_yaml(path), str(path))


def check_resume(stored: CompareSpec, requested: CompareSpec | None, asked: set[str] | None = None) -> CompareSpec:
    """The spec to resume with: the stored one, after checking that what the user asked for
    again agrees with it.

    Parameters
    ----------
    stored : CompareSpec, from the compare folder
    requested : CompareSpec or None (None: nothing asked, resume as stored)
    asked : set of str, optional
        The parts the command line set: "T", "seeds", "skip", "recipes" and "overrides" (of
        the latter only the keys it gives are compared). The rest of ``requested`` holds
        defaults the user never gave. None compares everything.

    Raises
    ------
    BadInput
        If an asked part differs (names the first differing part).
    """
    if requested is None:
        return stored
    a, b = stored.to_dict(), requested.to_dict()
    if asked is not None and "overrides" in asked:  # the keys given now, not every stored one
        a["overrides"] = {k: a["overrides"].get(k) for k in b["overrides"]}
    for key in ("T", "seeds", "skip", "overrides", "recipes"):
        if (asked is None or key in asked) and a[key] != b[key]:
            raise BadInput(f"--resume: {key} differs from the stored comparison; give --resume DIR alone to finish it as it was")
    return stored


# ---------------------------------------------------------------------------------------
# The plan and the skip rule


@dataclass(frozen=True)
class Plan:
    """Every recipe's sweep and jobs, and all (job, folder) tasks in submission order.

    The tasks' jobs carry ids made unique across recipes ("<recipe>/<job id>"; recipes share
    job ids such as ``T5_lr1_r0``); :meth:`results_of` gives one recipe's results back under
    its sweep's own job ids.
    """

    specs: dict[str, SweepSpec]
    jobs: dict[str, list[Job]]
    tasks: list[tuple[Job, Path]]

    def results_of(self, name: str, results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """One recipe's results, keyed by its sweep's job ids."""
        prefix = f"{name}/"
        return {k[len(prefix):]: v for k, v in results.items() if k.startswith(prefix)}


def make_plan(spec: CompareSpec, folder: Path) -> Plan:
    """Expand every recipe into its sweep's jobs; order all tasks by T, then recipe, then setting."""
    specs = {r.name: spec.sweep_spec(r) for r in spec.recipes}
    jobs = {name: plan.plan(s) for name, s in specs.items()}
    order = {name: i for i, name in enumerate(specs)}
    entries = [(job.cfg.T, order[name], i, job, name) for name, js in jobs.items() for i, job in enumerate(js)]
    entries.sort(key=lambda e: e[:3])
    tasks = [(replace(job, job_id=f"{name}/{job.job_id}"), recipe_dir(folder, name) / "jobs" / job.job_id)
             for _, _, _, job, name in entries]
    return Plan(specs, jobs, tasks)


def recipe_dir(folder: Path, name: str) -> Path:
    """The sweep folder of a recipe inside a compare folder."""
    return Path(folder) / "recipes" / name


def _judge_T(spec: SweepSpec, jobs: list[Job], T: int, results: dict[str, dict[str, Any]],
             cache: dict | None = None) -> bool | None:
    """Whether T was learned, from its finished jobs; None while any of them is unfinished.

    A judged T never changes (its jobs are final), so ``cache`` may keep the outcome.
    """
    key = (id(spec), T)
    if cache is not None and key in cache:
        return cache[key]
    members: dict[tuple, list[tuple[str, dict[str, Any]]]] = {}
    for job in jobs:
        if job.cfg.T != T:
            continue
        s = results.get(job.job_id)
        if s is None or s.get("status") == "skipped":
            return None
        members.setdefault(tuple(job.setting.items()), []).append((job.job_id, s))
    candidates = [(dict(k), [verdict.seed_result(j, s, spec.base.alpha) for j, s in ms]) for k, ms in members.items()]
    outcome = verdict.judge_axis_value(candidates, spec.grid, spec.tuned)["learned"]
    if cache is not None:
        cache[key] = outcome
    return outcome


def skip_reason(spec: SweepSpec, jobs: list[Job], T: int, results: dict[str, dict[str, Any]],
                cache: dict | None = None) -> str | None:
    """Why T is skipped: two consecutive T values of the grid below it were judged not learned.

    A pure function of the finished results, so the same results give the same skipped T
    however the jobs were scheduled.
    """
    below = [t for t in spec.grid["T"] if t < T]
    failed_run = 0
    for t in below:
        outcome = _judge_T(spec, jobs, t, results, cache)
        failed_run = failed_run + 1 if outcome is False else 0
        if failed_run >= SKIP_AFTER:
            return f"not learned at two consecutive T before it ({below[below.index(t) - 1]} and {t})"
    return None


# ---------------------------------------------------------------------------------------
# Running it


def run_compare(spec: CompareSpec, folder: Path, executor: Executor,
                callback: Callable[[SweepProgress], None] | None = None, argv: list[str] | None = None,
                resumed: bool = False) -> dict[str, Any]:
    """Run (or resume) a comparison in ``folder`` and write every file.

    Parameters
    ----------
    spec : CompareSpec
    folder : Path
        An existing folder (new, or the one being resumed).
    executor : concurrent.futures.Executor
        Where the jobs run.
    callback : callable(SweepProgress), optional
    argv : list of str, optional
    resumed : bool

    Returns
    -------
    dict, the content of ``summary.json`` (see :func:`summarize`).

    Raises
    ------
    KeyboardInterrupt
        After recording status "interrupted" (finished jobs stay on disk).
    """
    from frnn_cli.runs import atomic_write_json, atomic_write_text, base_meta, carry_over_meta, finish_meta, nan_to_none

    start = time.perf_counter()
    p = make_plan(spec, folder)
    where = getattr(executor, "description", type(executor).__name__)
    if not resumed:
        atomic_write_text(folder / SPEC_FILE, dump_spec(spec))
    meta = base_meta(p.specs[spec.recipes[0].name].base.seed, argv)
    meta.update({"kind": "compare", "recipes": [r.name for r in spec.recipes], "n_jobs": len(p.tasks),
                 "executor": where, "resumed": []})
    if resumed:
        carry_over_meta(folder, meta)
    atomic_write_json(folder / "meta.json", meta)
    metas = {}
    for name, s in p.specs.items():
        recipe_dir(folder, name).mkdir(parents=True, exist_ok=True)
        metas[name] = sweep.start_files(s, recipe_dir(folder, name), where, argv, resumed)

    judged: dict = {}

    def skip(job: Job, results: dict[str, dict[str, Any]]) -> str | None:
        if not spec.skip:
            return None
        name = job.job_id.split("/", 1)[0]
        return skip_reason(p.specs[name], p.jobs[name], job.cfg.T, p.results_of(name, results), judged)

    sweeps: dict[str, dict[str, Any]] = {}
    try:  # an interrupt while the summaries and plots are written counts too: resume finishes them
        results = run_jobs(p.tasks, executor, callback, skip=skip)
        per_recipe = final_results(spec, p, results)
        for name in p.specs:
            sweeps[name] = sweep.finish_files(p.specs[name], recipe_dir(folder, name), p.jobs[name],
                                              per_recipe[name], metas[name], start)
        atomic_write_text(folder / "compare.csv", compare_csv(spec, sweeps))
        write_plots(spec, sweeps, folder)
        # The wall time a user waits: every recipe's plots and the comparison's own included.
        summary = summarize(spec, p, sweeps, per_recipe, time.perf_counter() - start)
        atomic_write_json(folder / "summary.json", nan_to_none(summary))
    except KeyboardInterrupt:
        for name in p.specs:
            if name not in sweeps:  # a recipe whose files are all written keeps its own status
                finish_meta(recipe_dir(folder, name), metas[name], "interrupted")
        finish_meta(folder, meta, "interrupted")
        raise
    finish_meta(folder, meta, "failed" if any(s["n_failed"] for s in sweeps.values()) else "completed")
    return summary


def final_results(spec: CompareSpec, p: Plan, results: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each recipe's results under its own job ids, with every job at a skipped T marked
    skipped -- also one that ran because it had started before the rule fired -- so the
    tables depend on the results alone.

    Returns
    -------
    dict recipe -> {job id -> summary}
    """
    out = {}
    judged: dict = {}
    for name, s in p.specs.items():
        mine = p.results_of(name, results)
        final = dict(mine)
        if spec.skip:
            for T in s.grid["T"]:
                reason = skip_reason(s, p.jobs[name], T, mine, judged)
                if reason:
                    for job in p.jobs[name]:
                        if job.cfg.T == T:
                            final[job.job_id] = {"status": "skipped", "reason": reason}
        out[name] = final
    return out


def _median(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else math.nan


def summarize(spec: CompareSpec, p: Plan, sweeps: dict[str, dict[str, Any]],
              results: dict[str, dict[str, dict[str, Any]]], seconds: float) -> dict[str, Any]:
    """Per recipe: its answers, how many jobs ran, were skipped, diverged or failed, and their seconds.

    Returns
    -------
    dict with "T", "seeds", "seconds" (wall time), "jobs" (all, run, skipped), "saved_by_skip"
    (fraction of jobs skipped) and "recipes": name -> {"description", "source", "max_T",
    "max_T_contiguous", "max_T_gradient", "max_T_gradient_contiguous", "jobs_run",
    "jobs_skipped", "jobs_diverged", "jobs_failed", "job_seconds"}.
    """
    out: dict[str, Any] = {}
    for r in spec.recipes:
        s = sweeps[r.name]
        mine = results[r.name]
        statuses = [mine.get(j.job_id, {}).get("status") for j in p.jobs[r.name]]
        job_seconds = sum(float(mine.get(j.job_id, {}).get("seconds") or 0.0) for j in p.jobs[r.name])
        out[r.name] = {
            "description": r.description,
            "source": r.source,
            "max_T": s["max_T"],
            "max_T_contiguous": s["max_T_contiguous"],
            "max_T_gradient": s["max_T_gradient"],
            "max_T_gradient_contiguous": s["max_T_gradient_contiguous"],
            "jobs_run": sum(st not in ("skipped", None) for st in statuses),
            "jobs_skipped": statuses.count("skipped"),
            "jobs_diverged": statuses.count("diverged"),
            "jobs_failed": sum(st not in ("completed", "diverged", "skipped") for st in statuses),
            "job_seconds": round(job_seconds, 2),
        }
    n = len(p.tasks)
    skipped = sum(v["jobs_skipped"] for v in out.values())
    return {"T": list(spec.T), "seeds": spec.seeds, "seconds": round(seconds, 2),
            "jobs": {"all": n, "run": n - skipped, "skipped": skipped},
            "saved_by_skip": round(skipped / n, 4) if n else 0.0, "recipes": out}


def compare_csv(spec: CompareSpec, sweeps: dict[str, dict[str, Any]]) -> str:
    """``compare.csv``: one row per recipe x T.

    Columns: recipe, T, status (run/skipped), learned, learned_by_gradient, how,
    test_acc_mean, seeds_better ("2/3"), chosen (e.g. "lr=0.3"), at_edge (e.g.
    "lr=largest"), best_step_median and unit (the chosen seeds' best checkpoints, in steps --
    or, for random guessing, trials), R_best_median (median ||R||_2 at the best checkpoints),
    jacobian_best_median (median ||da(T)/da(1)||_2 there), reason (why skipped).
    """
    cols = ["recipe", "T", "status", "learned", "learned_by_gradient", "how", "test_acc_mean", "seeds_better",
            "chosen", "at_edge", "best_step_median", "unit", "R_best_median", "jacobian_best_median", "reason"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)

    def num(v: float) -> str:
        return "" if v is None or v != v else f"{v:.6g}"

    for r in spec.recipes:
        s = sweeps[r.name]
        for row in s["rows"]:
            if row.get("status") == "skipped":
                w.writerow([r.name, row["T"], "skipped", *[""] * (len(cols) - 4), row.get("reason", "")])
                continue
            if "test_acc" not in row:
                w.writerow([r.name, row["T"], "failed", "false", "false", *[""] * (len(cols) - 5)])
                continue
            chosen = ";".join(f"{k}={row[k]:g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in s["tuned"])
            w.writerow([
                r.name, row["T"], "run", str(row["learned"]).lower(), str(row["gradient"]["learned"]).lower(),
                row["how"] if row["learned"] else "", num(row["test_acc_mean"]),
                f"{sum(row['better_than_chance'])}/{len(row['better_than_chance'])}", chosen,
                ";".join(f"{k}={v}" for k, v in row["at_edge"].items()),
                num(_median([float(v) for v in row["best_step"] if v is not None])), s.get("unit", "steps"),
                num(_median(row["R_best"])), num(_median(row["jacobian_best"])), "",
            ])
    return buf.getvalue()


def write_plots(spec: CompareSpec, sweeps: dict[str, dict[str, Any]], folder: Path) -> list[Path]:
    """``plots/accuracy_vs_T.png``, ``max_T.png`` and ``why.png`` (see :mod:`frnn_cli.plots.compare`)."""
    from frnn_cli.plots import compare as plots

    d = folder / "plots"
    d.mkdir(exist_ok=True)
    names = [r.name for r in spec.recipes]
    return [
        plots.accuracy_vs_T(names, sweeps, d / "accuracy_vs_T.png"),
        plots.max_T(names, sweeps, d / "max_T.png"),
        plots.why(names, sweeps, d / "why.png"),
    ]


def describe_plan(spec: CompareSpec, p: Plan) -> str:
    """The plan in one phrase: recipes x T x tuned grid x seeds, and the job count."""
    parts = []
    for r in spec.recipes:
        tuned = " x ".join(f"{len(v)} {k}" for k, v in r.tune.items()) or "nothing tuned"
        parts.append(f"{r.name} ({tuned})")
    T = ",".join(str(t) for t in spec.T)
    skip = "" if spec.skip else ", no skipping"
    return (f"{len(p.tasks)} jobs at most: {len(spec.recipes)} recipes [{'; '.join(parts)}] x T={T} x "
            f"{spec.seeds} seeds{skip}")


def read_summary(folder: Path) -> dict[str, Any]:
    """A finished comparison's summary.json (for tools that read compare folders)."""
    return json.loads((Path(folder) / "summary.json").read_text())
