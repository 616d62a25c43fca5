"""frnn compare: recipes, the skip rule, and a small real comparison against frnn sweep."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from helpers import expect_exit
from helpers import msg as _msg

from frnn_cli.errors import BadInput
from frnn_cli.experiment import compare, plan, recipes

SMALL = ["steps=60", "eval_every=20", "n_val=64", "n_test=200"]


def _one(runs: Path, kind: str) -> Path:
    (d,) = [p for p in runs.iterdir() if f"-{kind}-" in p.name]
    return d


def test_builtin_recipes_load_with_the_issue_rows():
    rs = recipes.load_recipes(recipes.BUILTIN)
    for name in ("reference", "momentum", "clip", "adam", "glorot", "orthogonal", "large_init", "large_lr", "reservoir",
                 "lstm", "guess"):
        assert name in rs and rs[name].description and rs[name].source, name
    assert rs["adam"].set == {"optimizer": "adam"} and rs["adam"].tune["lr"] == [0.001, 0.003, 0.01, 0.03, 0.1]
    assert rs["reservoir"].set["freeze"] == "W+R" and rs["clip"].set["clip"] == 1.0
    assert rs["lstm"].set["model"] == "lstm" and rs["guess"].set["optimizer"] == "guess" and rs["guess"].tune == {}
    assert rs["reference"].tune["lr"] == list(plan.DEFAULT_LR)  # the reference row is frnn sweep's default
    assert (Path(__file__).parents[1] / "configs" / "recipes.yaml").read_text() == recipes.BUILTIN.read_text()


def test_a_users_file_adds_and_replaces_recipes(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("adam:\n  description: mine\n  source: me\n  set: {optimizer: adam}\n  tune: {lr: [0.1, 0.2]}\n"
                 "wide:\n  description: w\n  source: s\n  set: {hidden: 64}\n  tune: {lr: 1..3}\n")
    got = recipes.select(["adam", "wide"], f)
    assert got[0].tune["lr"] == [0.1, 0.2] and got[0].description == "mine"
    assert got[1].set == {"hidden": 64} and got[1].tune["lr"] == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("x:\n  set: {hiden: 3}\n", "recipe 'x': unknown key 'hiden' (did you mean 'hidden'?)"),
        ("x:\n  set: {T: 3}\n", "recipe 'x' sets T; T is the axis"),
        ("x:\n  tune: {lr: [0.1, -1]}\n", "recipe 'x': lr: expected a value > 0"),
        ("x:\n  sett: {}\n", "recipe 'x' has unknown field 'sett'"),
        ("x: 3\n", "recipe 'x' must be a mapping"),
    ],
)
def test_a_bad_recipe_is_one_line(tmp_path, text, fragment):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(BadInput, match=None) as info:
        recipes.select(None, f)
    assert fragment in str(info.value), str(info.value)


def _jobs_and_results(outcomes: dict[int, bool]):
    """A one-recipe compare spec over T = 1..5 and results where T learned per ``outcomes``."""
    spec = compare.CompareSpec(recipes=[recipes.Recipe("r", "", "", {}, {"lr": [1.0, 3.0]})], T=[1, 2, 3, 4, 5], seeds=1)
    s = spec.sweep_spec(spec.recipes[0])
    jobs = plan.plan(s)
    results = {job.job_id: _run_summary(outcomes[job.cfg.T]) for job in jobs if job.cfg.T in outcomes}
    return s, jobs, results


def test_skip_rule_fires_after_two_consecutive_failures_only():
    s, jobs, results = _jobs_and_results({1: True, 2: False, 3: True, 4: False})
    assert compare.skip_reason(s, jobs, 5, results) is None  # 2 and 4 failed, but not in a row
    s, jobs, results = _jobs_and_results({1: True, 2: False, 3: False})
    assert compare.skip_reason(s, jobs, 4, results) == "not learned at two consecutive T before it (2 and 3)"
    assert compare.skip_reason(s, jobs, 3, results) is None
    # A T whose jobs are not all finished is not judged yet.
    s, jobs, results = _jobs_and_results({1: False, 2: False})
    del results[next(j.job_id for j in jobs if j.cfg.T == 2)]
    assert compare.skip_reason(s, jobs, 3, results) is None


@pytest.fixture(scope="module")
def small_compare(tmp_path_factory):
    from typer.testing import CliRunner

    from frnn_cli.cli import app

    runs = tmp_path_factory.mktemp("runs")
    # Two recipes whose grids share lr values, so their job ids (T1_lr1_r0, ...) coincide.
    r = CliRunner().invoke(app, ["compare", "--recipes", "reference,large_init", "T=1,2", "--seeds", "2", "--workers", "2",
                                 "--runs-dir", str(runs), *SMALL])
    expect_exit(r, 0)
    return r, _one(runs, "compare")


def test_compare_writes_every_file_and_prints_the_table(small_compare):
    r, d = small_compare
    for name in ("compare.yaml", "meta.json", "compare.csv", "summary.json", "plots/accuracy_vs_T.png",
                 "plots/max_T.png", "plots/why.png"):
        assert (d / name).is_file(), name
    for recipe in ("reference", "large_init"):
        for name in ("sweep.yaml", "meta.json", "summary.json", "summary.csv", "plots/accuracy_vs_T.png"):
            assert (d / "recipes" / recipe / name).is_file(), (recipe, name)
    assert json.loads((d / "meta.json").read_text())["status"] == "completed"
    assert "Which remedy carries the bit how far" in r.stdout and "max T (gradient)" in r.stdout, _msg(r)
    for recipe in ("reference", "large_init"):
        s = json.loads((d / "recipes" / recipe / "summary.json").read_text())
        # "at max T": the median best step of the chosen seeds' jobs at the recipe's max T.
        row = next(x for x in s["rows"] if x["T"] == s["max_T"])
        steps = sorted(json.loads((d / "recipes" / recipe / "jobs" / j / "summary.json").read_text())["best_step"]
                       for j in row["best_job"])
        median = (steps[0] + steps[1]) / 2  # two seeds
        cost = f"{median:,.0f} steps" if median == int(median) else f"{median:,.1f} steps"
        assert _recipe_line(r.stdout, recipe) == _expected_line(d, recipe, f"  at max T {cost}"), _msg(r)


_MARK = {"skipped": "–", "failed": "!"}


def _expected_line(d: Path, recipe: str, tail: str = "") -> str:
    """A recipe's plain line, from the files: marks from compare.csv, both answers from the recipe's summary.json."""
    cells = []
    for row in csv.DictReader((d / "compare.csv").open()):
        if row["recipe"] != recipe:
            continue
        if row["status"] in _MARK:
            mark = _MARK[row["status"]]
        elif row["learned"] != "true":
            mark = "✗"
        elif row["learned_by_gradient"] == "true":
            mark = "✓"
        else:
            mark = {"latch": "L", "guess": "G", "readout": "V"}[row["how"]]
        cells.append(f"{row['T']} {mark}")
    s = json.loads((d / "recipes" / recipe / "summary.json").read_text())
    answer = " ".join(str(s[k]) if s[k] is not None else "none" for k in ("max_T", "max_T_gradient"))
    any_way, gradient = answer.split()
    return f"{recipe}: " + "  ".join(cells) + f"  max T {any_way} (gradient {gradient})" + tail


def _recipe_line(stdout: str, recipe: str) -> str:
    """The one line of the printed comparison that starts with the recipe's name (a log: no box drawing)."""
    assert not any(c in stdout for c in "┃│┏━"), stdout
    (line,) = [ln for ln in stdout.splitlines() if ln.startswith(f"{recipe}: ")]
    return line


def test_a_skipped_T_reads_as_skipped_in_the_recipes_own_sweep(cli, tmp_path, monkeypatch):
    """A recipe that learns nothing (lr 1e-6, 1e-5) fails at T = 3 and 4, so T = 5 is skipped: the
    recipe's summary.csv says so instead of "learned false", its accuracy plot marks the column,
    and the log's line for the recipe shows "–" there."""
    from frnn_cli.plots import sweep as plots_sweep

    drawn = {}
    original = plots_sweep._save

    def keep(fig, path):  # what the figure says, read before saving lets it go
        ax = fig.axes[0]
        drawn[(path.parent.parent.name, path.name)] = (
            [(t.get_text(), t.get_position()[0]) for t in ax.texts],
            [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [])
        return original(fig, path)

    monkeypatch.setattr(plots_sweep, "_save", keep)
    f = tmp_path / "dead.yaml"
    f.write_text("dead: {set: {}, tune: {lr: [1e-6, 1e-5]}, description: x, source: y}\n")
    runs = tmp_path / "runs"
    r = cli("compare", "--recipes-file", str(f), "--recipes", "dead", "T=3,4,5", "--seeds", "1", "--workers", "1",
            "--runs-dir", str(runs), *SMALL)
    expect_exit(r, 0)
    d = _one(runs, "compare")
    assert [(row["T"], row["status"]) for row in csv.DictReader((d / "compare.csv").open())] == [
        ("3", "run"), ("4", "run"), ("5", "skipped")], (d / "compare.csv").read_text()
    rows = list(csv.DictReader((d / "recipes" / "dead" / "summary.csv").open()))
    assert [(row["T"], row["learned"], row["status"]) for row in rows] == [
        ("3", "false", ""), ("4", "false", ""), ("5", "", "skipped")], rows
    assert _recipe_line(r.stdout, "dead") == _expected_line(d, "dead") == "dead: 3 ✗  4 ✗  5 –  max T none (gradient none)"
    words, legend = drawn[("dead", "accuracy_vs_T.png")]
    assert ("skipped", 2) in words, words  # T = 5 is the third position
    assert any(label.startswith("skipped") for label in legend), legend


def test_compare_csv_matches_each_recipes_sweep_summary(small_compare):
    _, d = small_compare
    rows = list(csv.DictReader((d / "compare.csv").open()))
    assert [(row["recipe"], row["T"]) for row in rows] == [
        ("reference", "1"), ("reference", "2"), ("large_init", "1"), ("large_init", "2")]
    summary = json.loads((d / "summary.json").read_text())
    for row in rows:
        s = json.loads((d / "recipes" / row["recipe"] / "summary.json").read_text())
        srow = next(x for x in s["rows"] if str(x["T"]) == row["T"])
        assert row["learned"] == str(srow["learned"]).lower()
        assert row["seeds_better"] == f"{sum(srow['better_than_chance'])}/2"
        assert row["chosen"] == f"lr={srow['lr']:g}"
        assert summary["recipes"][row["recipe"]]["max_T"] == s["max_T"]


@pytest.mark.parametrize("recipe, keys", [("reference", []), ("large_init", ["init_scale=0.3"])])
def test_each_recipe_is_frnn_sweep_with_its_settings(small_compare, cli, tmp_path, recipe, keys):
    """The same protocol: a recipe's sweep equals frnn sweep with its keys and grid, byte for byte."""
    _, d = small_compare
    lr = ",".join(f"{v:g}" for v in recipes.select([recipe])[0].tune["lr"])
    r = cli("sweep", "T=1,2", f"lr={lr}", *keys, "--seeds", "2", "--workers", "1", "--runs-dir", str(tmp_path), *SMALL)
    expect_exit(r, 0)
    assert (_one(tmp_path, "sweep") / "summary.csv").read_text() == (d / "recipes" / recipe / "summary.csv").read_text()


def test_resume_of_a_finished_compare_runs_nothing_and_gives_the_same_files(small_compare, cli):
    _, d = small_compare
    before = (d / "compare.csv").read_text()
    job = next((d / "recipes" / "large_init" / "jobs").iterdir())
    (job / "summary.json").unlink()  # as if killed before this job finished
    r = cli("compare", "--resume", str(d), "--workers", "1")
    expect_exit(r, 0)
    assert "1 of 56 jobs not done" in r.stdout, _msg(r)  # (8 + 6 lr) x 2 T x 2 seeds
    assert (d / "compare.csv").read_text() == before
    # Asking again for what was stored (2 seeds) is no change, though T and the recipes were
    # not given (their defaults differ from the stored ones); 3 seeds is refused.
    r = cli("compare", "--resume", str(d), "--seeds", "2", "--workers", "1")
    expect_exit(r, 0)
    r = cli("compare", "--resume", str(d), "--seeds", "3")
    expect_exit(r, 2)
    assert "--resume: seeds differs from the stored comparison" in r.stderr, _msg(r)


def test_the_seconds_of_a_comparison_count_its_plots(small_compare, cli, tmp_path, monkeypatch):
    """A finished comparison resumed runs no job, but writes every recipe's files and plots and its
    own: its "seconds" are the wall time until its last plot, not the time before the plots."""
    import shutil
    import time

    from frnn_cli.experiment import sweep

    _, done = small_compare
    d = tmp_path / "again"
    shutil.copytree(done, d)
    seen: dict[str, float] = {}
    start_files, write_plots = sweep.start_files, compare.write_plots

    def first_file(*args, **kw):
        seen.setdefault("start", time.perf_counter())
        return start_files(*args, **kw)

    def plots(*args, **kw):
        out = write_plots(*args, **kw)
        seen["plotted"] = time.perf_counter()
        return out

    monkeypatch.setattr(sweep, "start_files", first_file)
    monkeypatch.setattr(compare, "write_plots", plots)
    before = time.perf_counter()
    r = cli("compare", "--resume", str(d), "--workers", "1")
    wall = time.perf_counter() - before
    expect_exit(r, 0)
    seconds = json.loads((d / "summary.json").read_text())["seconds"]
    assert seen["plotted"] - seen["start"] - 0.01 <= seconds <= wall, (seconds, seen, wall)


def test_compare_refuses_lists_other_than_T(cli, tmp_path):
    r = cli("compare", "lr=0.1,0.3", "--dry-run", "--runs-dir", str(tmp_path))
    expect_exit(r, 2)
    assert "a tuned grid belongs to a recipe" in r.stderr and not any(tmp_path.iterdir()), _msg(r)


def test_compare_refuses_a_value_for_a_key_a_recipe_tunes(cli, tmp_path):
    """reference tunes lr; a single lr=0.5 would be replaced by its grid without a word."""
    r = cli("compare", "lr=0.5", "--recipes", "adam,reference", "--dry-run", "--runs-dir", str(tmp_path))
    expect_exit(r, 2)
    assert "lr: recipe 'adam' tunes lr over its own grid, so lr=0.5 would be lost" in _msg(r).replace("\n", " ")
    assert not any(tmp_path.iterdir())


def test_an_override_of_a_recipe_setting_is_applied_and_announced(cli, tmp_path):
    r = cli("compare", "steps=300", "--recipes", "reference,lstm,guess", "--dry-run", "--runs-dir", str(tmp_path))
    expect_exit(r, 0)
    assert "replaces recipe settings: lstm: steps=2000 -> 300, guess: steps=3000 -> 300" in r.stdout.replace("\n", " "), _msg(r)
    spec = compare.resolve_spec(["steps=300"], ["lstm"], None, None, True)
    assert {job.cfg.steps for job in plan.plan(spec.sweep_spec(spec.recipes[0]))} == {300}


def test_dry_run_lists_the_plan(cli, tmp_path):
    r = cli("compare", "--dry-run", "--runs-dir", str(tmp_path))
    expect_exit(r, 0)
    assert "Dry run (nothing is run): would launch 1539 jobs at most: 11 recipes" in r.stdout, _msg(r)
    assert "T=1,2,3,4,5,10,20,50,100 x 3 seeds" in r.stdout and "Launching" not in r.stdout
    assert not any(tmp_path.iterdir())


def test_recipes_sharing_job_ids_keep_their_own_results(tmp_path):
    """reference and large_init both have a job T1_lr1_r0; each recipe must judge its own."""
    spec = compare.CompareSpec(recipes=[recipes.Recipe("a", "", "", {}, {"lr": [1.0, 3.0]}),
                                        recipes.Recipe("b", "", "", {"init_scale": 0.3}, {"lr": [1.0, 3.0]})],
                               T=[1], seeds=1)
    p = compare.make_plan(spec, tmp_path)
    ids = [job.job_id for job, _ in p.tasks]
    assert ids == ["a/T1_lr1_r0", "a/T1_lr3_r0", "b/T1_lr1_r0", "b/T1_lr3_r0"]
    assert [str(folder.relative_to(tmp_path)) for _, folder in p.tasks] == [
        "recipes/a/jobs/T1_lr1_r0", "recipes/a/jobs/T1_lr3_r0", "recipes/b/jobs/T1_lr1_r0", "recipes/b/jobs/T1_lr3_r0"]
    good, bad = _run_summary(True), _run_summary(False)
    results = {"a/T1_lr1_r0": good, "a/T1_lr3_r0": good, "b/T1_lr1_r0": bad, "b/T1_lr3_r0": bad}
    per_recipe = compare.final_results(spec, p, results)
    assert per_recipe == {"a": {"T1_lr1_r0": good, "T1_lr3_r0": good}, "b": {"T1_lr1_r0": bad, "T1_lr3_r0": bad}}


def _run_summary(good: bool) -> dict:
    return {"status": "completed", "stop_reason": "converged", "steps_done": 100,
            "best": {"val_acc": 1.0 if good else 0.5, "val_loss": 0.1, "step": 100},
            "test": {"correct": 200 if good else 100, "n": 200}, "mechanism": {"label": "gradient"}}


def test_an_interrupt_while_the_files_are_written_is_recorded_and_resume_finishes(cli, tmp_path, monkeypatch):
    """Ctrl-C after the last job, while summaries and plots are written: status "interrupted",
    not "running"; --resume writes the files and keeps the first command and start time."""
    args = ["compare", "--recipes", "reference,adam", "T=1", "--seeds", "1", "--workers", "1", "--runs-dir",
            str(tmp_path), *SMALL]

    def ctrl_c(*_args, **_kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(compare, "write_plots", ctrl_c)  # the last step of the finish
    r = cli(*args)
    expect_exit(r, 130)
    d = _one(tmp_path, "compare")
    first = json.loads((d / "meta.json").read_text())
    assert first["status"] == "interrupted", first
    assert {json.loads((d / "recipes" / n / "meta.json").read_text())["status"] for n in ("reference", "adam")} == {
        "completed"}  # each recipe's own files were all written before the interrupt
    monkeypatch.undo()

    r = cli("compare", "--resume", str(d), "--workers", "1")
    expect_exit(r, 0)
    meta = json.loads((d / "meta.json").read_text())
    assert meta["status"] == "completed" and (d / "plots" / "max_T.png").is_file()
    assert (meta["command"], meta["start_time"]) == (first["command"], first["start_time"])
    assert first["resumed"] == [] and len(meta["resumed"]) == 1 and meta["resumed"][0]["start_time"] >= first["start_time"]


def _fake_comparison(T: list[int]) -> tuple[list[str], dict, dict]:
    """The eleven built-in recipes' names, each with one row per T: learned by gradient up to
    T = 3, beyond that by the recipe's own way (a latch, the read-out, guessing) or not at all."""
    names = list(recipes.load_recipes(recipes.BUILTIN))
    ways = ["latch", "readout", "guess", "none"]
    sweeps, summary = {}, {"recipes": {}}
    for i, name in enumerate(names):
        rows = [{"T": t, "test_acc": [1.0], "learned": t <= 3 or ways[i % 4] != "none",
                 "gradient": {"learned": t <= 3}, "how": "gradient" if t <= 3 else ways[i % 4], "best_step": [1200]}
                for t in T]
        sweeps[name] = {"rows": rows, "unit": "steps"}
        learned = [r["T"] for r in rows if r["learned"]]
        summary["recipes"][name] = {"max_T": max(learned), "max_T_gradient": 3}
    return names, summary, sweeps


def test_at_80_columns_the_compare_table_keeps_every_recipe_and_mark():
    """The default T grid at 80 columns: every recipe's row shows its name and one mark per T, as
    the rows say (Rich used to shrink every column of a table wider than the terminal)."""
    from frnn_cli.cli.show import compare_table

    T = list(compare.DEFAULT_T)
    names, summary, sweeps = _fake_comparison(T)
    marks = {"latch": "L", "readout": "V", "guess": "G"}
    for width in (80, 120):
        console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
        console.print(compare_table(names, T, summary, sweeps))
        shown = console.export_text().splitlines()
        assert max(len(ln) for ln in shown) <= width, shown
        for name in names:
            (line,) = [ln.replace("│", " ").split() for ln in shown if ln.replace("│", " ").split()[:1] == [name]]
            expected = ["✓" if r["gradient"]["learned"] else marks.get(r["how"], "✗") for r in sweeps[name]["rows"]]
            assert line[1:1 + len(T)] == expected, (width, line)
            assert line[1 + len(T):1 + len(T) + 2] == [str(summary["recipes"][name]["max_T"]), "(3)"], (width, line)
        assert ("┃" in "".join(shown)) == (width == 120), shown  # the boxed table where it fits


def test_the_guess_mark_says_beat_chance_not_solved():
    """A guessing seed is "learned" when its tested network beats chance, whether or not any trial
    solved the screening set: the legend must not promise a solution."""
    from frnn_cli.cli.show import COMPARE_LEGEND

    (entry,) = [e for e in COMPARE_LEGEND if e.startswith("G ")]
    assert "solved by" not in entry and "beat chance" in entry and "need not have solved" in entry, entry
