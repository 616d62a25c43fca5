"""The verdict rules of every experiment, in one place.

* :func:`chance_test` -- is one run's test accuracy better than chance? (one-sided exact
  binomial test, ``scipy.stats.binomtest``'s p-value via ``scipy.special.bdtrc``);
* :func:`trained_past_init` -- does a run's verdict speak about a *trained* network?
* :func:`learned` -- does a setting count as learned? (a strict majority of its seeds);
* :func:`max_T` -- the longest sequence length learned, and the longest with every shorter
  one learned too.

No I/O. SciPy is imported where the test runs, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ChanceTest:
    """One-sided exact binomial test of an accuracy against chance (p = 0.5).

    Attributes
    ----------
    correct : int
        Number of correctly classified test sequences k.
    n : int
        Number of test sequences.
    accuracy : float
        k / n.
    p_value : float
        P(X >= k) for X ~ Binomial(n, 0.5).
    better : bool
        ``p_value < alpha``.
    """

    correct: int
    n: int
    accuracy: float
    p_value: float
    better: bool


def chance_test(correct: int, n: int, alpha: float) -> ChanceTest:
    """Is an accuracy of ``correct`` out of ``n`` better than chance at level ``alpha``?

    One-sided exact binomial test: p = P(X >= correct) for X ~ Binomial(n, 0.5), the p-value
    of ``scipy.stats.binomtest(correct, n, 0.5, alternative="greater")``, computed with the
    binomial survival function ``scipy.special.bdtrc(correct - 1, n, 0.5)`` that scipy.stats
    itself uses: importing scipy.special takes about a third of the time of scipy.stats, and
    every ``frnn train`` pays that import once.

    Raises
    ------
    ValueError
        If not 0 <= correct <= n, n >= 1 and 0 < alpha < 1.
    """
    if not (n >= 1 and 0 <= correct <= n and 0 < alpha < 1):
        raise ValueError(f"need 0 <= correct <= n, n >= 1, 0 < alpha < 1; got {correct}, {n}, {alpha}")
    from scipy.special import bdtrc

    p = 1.0 if correct == 0 else float(bdtrc(int(correct) - 1, int(n), 0.5))
    return ChanceTest(int(correct), int(n), correct / n, p, p < alpha)


def min_correct_for_significance(n: int, alpha: float) -> int:
    """Smallest k with P(X >= k) < alpha for X ~ Binomial(n, 0.5): the significance threshold.

    Returns
    -------
    int; k / n is the accuracy line drawn on the sweep's accuracy plot.
    """
    from scipy import stats

    # P(X >= k) = sf(k - 1); find the smallest k with sf(k - 1) < alpha.
    k = int(stats.binom.isf(alpha, n, 0.5)) + 1
    while k > 0 and stats.binom.sf(k - 2, n, 0.5) < alpha:
        k -= 1
    while stats.binom.sf(k - 1, n, 0.5) >= alpha:
        k += 1
    return k


def learned(better_per_seed: Sequence[bool]) -> bool:
    """A sequence length counts as learned when a strict majority of seeds beat chance."""
    return sum(bool(b) for b in better_per_seed) * 2 > len(better_per_seed)


def max_T(axis_values: Sequence[int], learned_flags: Sequence[bool]) -> tuple[int | None, int | None]:
    """(max_T, max_T_contiguous) from the learned flag of each T.

    ``max_T`` is the largest learned T; ``max_T_contiguous`` the largest T such that every
    swept T' <= T is learned. Either is None when no T qualifies.
    """
    pairs = sorted(zip(axis_values, learned_flags))
    best = max((t for t, ok in pairs if ok), default=None)
    contiguous = None
    for t, ok in pairs:
        if not ok:
            break
        contiguous = t
    return best, contiguous


def trained_past_init(summary: dict) -> bool:
    """Whether a run's verdict is about a *trained* network.

    True when the run completed (did not diverge) and its best checkpoint comes after at least
    one update. A diverged run, or one whose best checkpoint is the initial weights (step 0),
    has learned nothing, whatever its test accuracy: an orthogonal initialisation can sort
    the two classes by chance. ``frnn sweep`` counts a seed as beating chance only when this
    holds, and ``frnn train`` says so when it does not.

    Parameters
    ----------
    summary : dict, the content of a run's ``summary.json``
    """
    best = summary.get("best") or {}
    return summary.get("status") == "completed" and (best.get("step") or 0) > 0


# ---------------------------------------------------------------------------------------
# How a run learned

#: Labels of :func:`learning_mechanism`.
MECHANISMS = ("gradient", "latch", "readout", "guess", "none")
#: One update multiplying ||R||_F by more than this factor (into ||R||_F >= 1) is a blow-up:
#: the step size, not the gradient's direction, threw the network into a latch. Measured
#: (docs/learning_mechanism.md): stable runs (lr <= 3 at the reference init, Adam, Glorot)
#: x1.0-x1.9; lr = 9 at T = 2 x3.1; lr >= 27 x4.6-x660.
JUMP_MAX = 2.5
#: ||R||_2 growing by more than this factor between initialisation and the learning event
#: is a blow-up too, however gradual (a backstop; the stable runs measured grew x1-x55).
GROWTH_MAX = 100.0
#: A training batch loss above this many times the initial loss (or ln 2, whichever is
#: larger) before the learning event is a catapult: the step threw the network uphill first.
LOSS_EXCURSION = 5.0
_LN2 = 0.6931471805599453


@dataclass(frozen=True)
class Mechanism:
    """How a run learned, read off its evaluation history (see :func:`learning_mechanism`).

    Attributes
    ----------
    label : str
        "gradient", "latch", "none" (the run did not learn), "readout" (R was frozen, so only
        the read-out can have learned: see frnn_cli.runs.train_summary) or "guess" (random
        weight guessing, which has no learning event: :func:`frnn_cli.guess.train_by_guessing`).
    step : int or None
        The learning event: the first evaluation whose validation accuracy reached halfway
        from chance (0.5) to the run's best validation accuracy.
    R_norm : float
        ||R||_2 at the event.
    R_growth : float
        ||R||_2 at the event divided by ||R||_2 at initialisation.
    jacobian : float
        The larger of the median ||da(T)/da(1)||_2 at the event and at the evaluation before
        it: the share of the error at a(T) that could reach a(1) while the run learned.
    R_jump : float
        The largest one-update growth factor of ||R||_F (into ||R||_F >= 1) up to the event.
    loss_peak : float
        Largest single-batch training loss (nats) up to the event.
    reason : str
        One line saying why the label applies, with the numbers.
    """

    label: str
    step: int | None = None
    R_norm: float = float("nan")
    R_growth: float = float("nan")
    jacobian: float = float("nan")
    R_jump: float = float("nan")
    loss_peak: float = float("nan")
    reason: str = ""

    def as_dict(self) -> dict:
        """The fields as a plain dict (JSON-ready but for NaN)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def learning_mechanism(history: Sequence[dict], eps: float, learned: bool) -> Mechanism:
    """Label *how* a run learned: by the error signal carried back through time, or otherwise.

    The rule (justified with measured runs in docs/learning_mechanism.md). Let the learning
    event e be the first evaluation whose validation accuracy reached 0.5 + (best - 0.5) / 2,
    with best the run's best validation accuracy. Then

    * ``none``     -- the run did not learn (``learned`` is False);
    * ``latch``    -- the error signal that could reach a(1) around e, J = max(||da(T)/da(1)||_2
      at e and at the evaluation before), was below the dtype's precision ``eps`` (the part of
      the gradient that carries the class is lost in rounding); or one update multiplied
      ||R||_F by more than :data:`JUMP_MAX` into the saturating range, or ||R||_2 grew by more
      than :data:`GROWTH_MAX` times its initial value (a weight blow-up); or a training batch
      loss rose above :data:`LOSS_EXCURSION` times the initial loss before e (a catapult). The
      network was thrown into a saturated two-state latch whose state the read-out learns;
    * ``gradient`` -- otherwise: gradient descent in its stable regime, with a representable
      error signal from step 1 and weights that changed a little per update.

    When e is step 0 the untrained network already separated the classes (T = 1, where the
    sign of V W decides; an orthogonal R); the same criteria then describe the initial
    network (a random latch at large weights is a ``latch``, as random guessing finds them).

    Parameters
    ----------
    history : sequence of mappings with the columns of metrics.csv ("step",
        "train_loss_max", "R_jump", "val_loss", "val_acc", "R_spectral_norm",
        "jacobian_norm"), in step order
    eps : float
        Machine epsilon of the run's dtype (2.2e-16 for float64, 1.2e-7 for float32).
    learned : bool
        Whether the run's best checkpoint beat chance on the test set after training.

    Returns
    -------
    Mechanism

    Raises
    ------
    ValueError
        If ``history`` is empty.

    Notes
    -----
    Sources: the latch and random-guessing observations of Hochreiter & Schmidhuber (1997)
    and Schmidhuber, Hochreiter & Bengio (2001); the catapult phase of large learning rates,
    Lewkowycz et al. (2020).
    """
    if not history:
        raise ValueError("learning_mechanism needs at least one evaluation")
    if not learned:
        return Mechanism("none", reason="the run did not beat chance")
    accs = [float(r["val_acc"]) for r in history]
    threshold = 0.5 + (max(accs) - 0.5) / 2
    e = next(i for i, a in enumerate(accs) if a >= threshold)
    rec = history[e]
    R0 = float(history[0]["R_spectral_norm"])
    R = float(rec["R_spectral_norm"])
    growth = R / R0 if R0 > 0 else float("inf")
    J = max(float(rec["jacobian_norm"]), float(history[max(e - 1, 0)]["jacobian_norm"]))
    before = history[1:e + 1]
    nan = float("nan")
    losses = [v for v in (float(r.get("train_loss_max", nan)) for r in before) if v == v]
    jumps = [v for v in (float(r.get("R_jump", nan)) for r in before) if v == v]
    peak, jump = max(losses, default=float("nan")), max(jumps, default=1.0)
    start = max(float(history[0]["val_loss"]), _LN2)
    step = int(rec["step"])
    common = dict(step=step, R_norm=R, R_growth=growth, jacobian=J, R_jump=jump, loss_peak=peak)
    when = f"by step {step}" if step else "already at initialisation (step 0)"
    if not J >= eps:  # also NaN
        return Mechanism("latch", reason=f"error signal reaching a(1) {J:.2g} below the precision {eps:.2g} "
                                         f"({when})", **common)
    if jump > JUMP_MAX:
        return Mechanism("latch", reason=f"weight blow-up: one update multiplied ||R||_F by {jump:.3g} "
                                         f"(||R||_2 {R:.3g} {when})", **common)
    if growth > GROWTH_MAX:
        return Mechanism("latch", reason=f"weight blow-up: ||R||_2 grew x{growth:.3g} to {R:.3g} {when}", **common)
    if peak > LOSS_EXCURSION * start:
        return Mechanism("latch", reason=f"catapult: a training loss of {peak:.3g} nats before step {step}",
                         **common)
    return Mechanism("gradient", reason=f"{when}: ||da(T)/da(1)||_2 {J:.2g}, largest one-update growth of "
                                        f"||R||_F x{jump:.3g}, ||R||_2 x{growth:.3g} since init", **common)


def how_learned(history: Sequence[dict], learned: bool, *, dtype: str = "float64", optimizer: str = "sgd",
                freeze: str = "none", best_step: int | None = None, T: int | None = None) -> Mechanism:
    """How a run learned, for every kind of run: the label of its ``summary.json``.

    * random guessing (``optimizer="guess"``): "guess" -- there is no learning event, only the
      trial that solved the screening set (``best_step``);
    * R frozen (``freeze`` names R): "readout" -- only the read-out (and W) can have learned,
      nothing was carried back through time (an echo-state network; Jaeger 2001);
    * T = 1: "gradient" -- there is no step to carry the error through (the class and the
      target meet at the same step; the gradient reaches W and V directly), so no latch can
      stand in for credit assignment through time, whatever the step size did;
    * otherwise :func:`learning_mechanism` with the precision of ``dtype``.

    Parameters
    ----------
    history : sequence of metrics.csv rows (mappings), in step order
    learned : bool
        Whether the run beat chance with a trained network.
    dtype : "float64" or "float32", the run's dtype
    optimizer, freeze : the run's config values
    best_step : int or None, the tested checkpoint's step (for guessing: its trial number, k + 1)
    T : int or None, the sequence length (None: not known, judged by the history alone)

    Returns
    -------
    Mechanism ("none" when not ``learned``)
    """
    import numpy as np

    if not learned:
        return Mechanism("none", reason="the run did not beat chance")
    if optimizer == "guess":
        return Mechanism("guess", step=best_step,
                         reason=f"random weight guessing: the network drawn at trial {best_step}")
    if "R" in freeze.split("+"):
        return Mechanism("readout", step=best_step,
                         reason=f"R frozen at its initial values ({freeze} frozen): only the read-out learned, nothing "
                                "was carried back through time (a reservoir, Jaeger 2001)")
    if T == 1:
        return Mechanism("gradient", step=best_step,
                         reason="T = 1: nothing to carry back through time, the gradient reaches W and V directly")
    return learning_mechanism(history, float(np.finfo(dtype).eps), learned)


# ---------------------------------------------------------------------------------------
# Tuning and the verdict per axis value

_EDGE_WORDS = {"smallest": "smallest", "largest": "largest"}


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if v == v]
    return sum(values) / len(values) if values else float("nan")


@dataclass(frozen=True)
class SeedResult:
    """One training run (one seed of a setting) as the verdict sees it.

    Attributes
    ----------
    job_id : str
    status : str
        "completed", "diverged", "failed" or "missing".
    val_acc, val_loss : float
        The best checkpoint's validation accuracy and loss -- or chance (0.5, ln 2) for a
        run that did not complete: a diverged or failed seed is a failed seed.
    test_acc, p_value : float
        Test accuracy of the best checkpoint and its one-sided binomial p-value (NaN if none).
    better : bool
        Beat chance at ``alpha`` with a trained network (:func:`trained_past_init`).
    mechanism : str
        How it learned (:data:`MECHANISMS`; "none" when it did not).
    best_step : int or None
    last_step : bool
        The best checkpoint is the run's last update of a run that used all its steps: more
        steps might have helped.
    R_best, jacobian_best : float
        ||R||_2 and median ||da(T)/da(1)||_2 at the best checkpoint (NaN if unknown).
    """

    job_id: str
    status: str
    val_acc: float
    val_loss: float
    test_acc: float
    p_value: float
    better: bool
    mechanism: str
    best_step: int | None
    last_step: bool
    R_best: float
    jacobian_best: float


def seed_result(job_id: str, summary: dict, alpha: float) -> SeedResult:
    """Judge one run from its ``summary.json`` content (see :func:`frnn_cli.runs.train_summary`)."""
    status = summary.get("status", "missing")
    best, test = summary.get("best") or {}, summary.get("test") or {}
    nan = float("nan")
    if status in ("completed", "diverged") and test:
        ct = chance_test(int(test["correct"]), int(test["n"]), alpha)
        acc, p = ct.accuracy, ct.p_value
        better = ct.better and trained_past_init(summary)
    else:
        acc, p, better = nan, nan, False
    ok = status == "completed" and bool(best)
    mech = (summary.get("mechanism") or {}).get("label", "none") if better else "none"
    steps_done = summary.get("steps_done")
    return SeedResult(
        job_id=job_id,
        status=status,
        val_acc=float(best["val_acc"]) if ok else 0.5,
        val_loss=float(best["val_loss"]) if ok and best.get("val_loss") is not None else _LN2,
        test_acc=acc,
        p_value=p,
        better=better,
        mechanism=mech,
        best_step=best.get("step") if best else None,
        last_step=bool(ok and summary.get("stop_reason") == "steps" and best.get("step") == steps_done),
        R_best=float(best.get("R_spectral_norm") or nan) if best else nan,
        jacobian_best=float(best["jacobian_norm"]) if best and best.get("jacobian_norm") is not None else nan,
    )


def _gradient_only(r: SeedResult) -> SeedResult:
    """The seed as the gradient-only answer sees it: learned otherwise than by gradient = chance."""
    if r.better and r.mechanism != "gradient":
        return SeedResult(**{**r.__dict__, "val_acc": 0.5, "val_loss": _LN2, "better": False})
    return r


def _choose(candidates: list[tuple[dict, list[SeedResult]]]) -> tuple[dict, list[SeedResult]]:
    """The setting with the highest mean validation accuracy over all its seeds (failed seeds
    counting as chance), ties broken by the lower mean validation loss."""
    return min(candidates, key=lambda c: (-_mean([r.val_acc for r in c[1]]), _mean([r.val_loss for r in c[1]])))


def grid_edges(setting: dict, grid: dict[str, list], tuned: Sequence[str]) -> dict[str, str]:
    """Tuned keys whose chosen value is the smallest or largest of a numeric grid of >= 2 values.

    Returns
    -------
    dict key -> "smallest" or "largest" (empty when every choice is interior).
    """
    edges = {}
    for k in tuned:
        values = grid.get(k, [])
        numeric = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(numeric) < 2 or len(numeric) != len(values):
            continue
        if setting[k] == min(numeric):
            edges[k] = "smallest"
        elif setting[k] == max(numeric):
            edges[k] = "largest"
    return edges


def judge_axis_value(candidates: list[tuple[dict, list[SeedResult]]], grid: dict[str, list],
                     tuned: Sequence[str]) -> dict:
    """Tune at one axis value and judge the winner, twice: over every run, and over runs
    that learned by gradient (others counting as chance).

    Parameters
    ----------
    candidates : list of (setting dict, its seeds' SeedResults), one per setting of the
        tuned keys at this axis value
    grid : dict key -> list of values (the sweep's grid)
    tuned : the swept keys other than the axis

    Returns
    -------
    dict: the chosen setting's tuned values; per seed "best_step", "test_acc", "p_value",
    "better_than_chance", "mechanism", "R_best", "jacobian_best", "best_job"; "val_acc",
    "val_loss", "test_acc_mean", "learned", "how" (the mechanism of most seeds that beat
    chance, or "none"), "n_diverged", "at_edge" (for a learned axis value: tuned key ->
    "smallest"/"largest"; and
    "steps" -> "last" when a seed that beat chance had its best checkpoint at its last
    update), and "gradient":
    {"learned", the tuned values chosen when only gradient-learned runs count, "best_job"}.
    """
    setting, seeds = _choose(candidates)
    better = [r.better for r in seeds]
    labels = [r.mechanism for r in seeds if r.better]
    how = max(set(labels), key=labels.count) if labels and learned(better) else "none"
    # Where nothing was learned the choice is noise (every setting sits at chance), and so
    # is whether it lands on an edge; only a learned axis value's edges mean something.
    edges: dict[str, str] = grid_edges(setting, grid, tuned) if learned(better) else {}
    # Likewise a best step: at chance it lands on the last evaluation as often as on any other.
    if any(r.last_step and r.better for r in seeds):
        edges["steps"] = "last"
    g_setting, g_seeds = _choose([(s, [_gradient_only(r) for r in rs]) for s, rs in candidates])
    return {
        **{k: setting[k] for k in tuned},
        "best_step": [r.best_step for r in seeds],
        "val_acc": _mean([r.val_acc for r in seeds]),
        "val_loss": _mean([r.val_loss for r in seeds]),
        "test_acc": [r.test_acc for r in seeds],
        "test_acc_mean": _mean([r.test_acc for r in seeds]),
        "p_value": [r.p_value for r in seeds],
        "better_than_chance": better,
        "learned": learned(better),
        "mechanism": [r.mechanism for r in seeds],
        "how": how,
        "n_diverged": sum(r.status == "diverged" for r in seeds),
        "at_edge": edges,
        "R_best": [r.R_best for r in seeds],
        "jacobian_best": [r.jacobian_best for r in seeds],
        "best_job": [r.job_id for r in seeds],
        "gradient": {
            "learned": learned([r.better for r in g_seeds]),
            **{k: g_setting[k] for k in tuned},
            "best_job": [r.job_id for r in g_seeds],
        },
    }


def summarize(axis: str, grid: dict[str, list], seeds: int, alpha: float,
              members: dict[tuple, list[tuple[str, dict]]]) -> dict:
    """Tune at every axis value, test the winner against chance per seed, find ``max_T`` --
    over all runs, and over runs that learned by gradient descent in its stable regime.

    Parameters
    ----------
    axis : str
        The key results are reported against ("T").
    grid : dict key -> list of values, the axis first
    seeds : int
    alpha : float
    members : dict setting (a tuple of (key, value) pairs of the swept keys) -> list of
        (job id, summary dict) per seed; a job without a summary is {"status": "missing"}

    Returns
    -------
    dict with "axis", "tuned", "alpha", "seeds", "rows" (one per axis value, see
    :func:`judge_axis_value`), "settings" (every setting's mean validation accuracy and
    loss and its diverged/failed seeds, for the tuning heat map), "max_T",
    "max_T_contiguous", "max_T_gradient", "max_T_gradient_contiguous", "edges" (axis
    values whose choice sat at an edge of its grid), "n_failed", "n_diverged".
    """
    tuned = [k for k in grid if k != axis]
    judged = {key: [seed_result(job_id, s, alpha) for job_id, s in ms] for key, ms in members.items()}
    settings = [
        {
            "setting": dict(key),
            "val_acc": _mean([r.val_acc for r in rs if r.status != "skipped"]),
            "val_loss": _mean([r.val_loss for r in rs if r.status != "skipped"]),
            "n_diverged": sum(r.status == "diverged" for r in rs),
            "n_failed": sum(r.status not in ("completed", "diverged", "skipped") for r in rs),
            "n_skipped": sum(r.status == "skipped" for r in rs),
        }
        for key, rs in judged.items()
    ]
    rows = []
    for value in grid[axis]:
        candidates = [(dict(key), rs) for key, rs in judged.items() if dict(key)[axis] == value]
        reasons = [s.get("reason", "") for key, ms in members.items() if dict(key)[axis] == value
                   for _, s in ms if s.get("status") == "skipped"]
        if reasons:  # a skip rule stopped this axis value (compare: two failures in a row)
            rows.append({axis: value, "learned": False, "status": "skipped", "reason": reasons[0],
                         "gradient": {"learned": False}})
            continue
        if not any(r.status in ("completed", "diverged") for _, rs in candidates for r in rs):
            rows.append({axis: value, "learned": False, "status": "no completed job",
                         "gradient": {"learned": False}})
            continue
        rows.append({axis: value, **judge_axis_value(candidates, grid, tuned)})
    values = [r[axis] for r in rows]
    best, contiguous = max_T(values, [r["learned"] for r in rows])
    g_best, g_contiguous = max_T(values, [r["gradient"]["learned"] for r in rows])
    return {
        "axis": axis,
        "tuned": tuned,
        "alpha": alpha,
        "seeds": seeds,
        "max_T": best,
        "max_T_contiguous": contiguous,
        "max_T_gradient": g_best,
        "max_T_gradient_contiguous": g_contiguous,
        "edges": [{axis: r[axis], **r["at_edge"]} for r in rows if r.get("at_edge")],
        "rows": rows,
        "settings": settings,
        "n_failed": sum(s["n_failed"] for s in settings),
        "n_diverged": sum(s["n_diverged"] for s in settings),
        "n_skipped": sum(s["n_skipped"] for s in settings),
    }
