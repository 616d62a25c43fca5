"""The verdict rules of every experiment, in one place.

* :func:`chance_test` -- is one run's test accuracy better than chance? (one-sided exact
  binomial test, ``scipy.stats.binomtest``);
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

    One-sided exact binomial test (``scipy.stats.binomtest(k, n, 0.5, alternative="greater")``).

    Raises
    ------
    ValueError
        If not 0 <= correct <= n, n >= 1 and 0 < alpha < 1.
    """
    if not (n >= 1 and 0 <= correct <= n and 0 < alpha < 1):
        raise ValueError(f"need 0 <= correct <= n, n >= 1, 0 < alpha < 1; got {correct}, {n}, {alpha}")
    from scipy import stats

    p = float(stats.binomtest(int(correct), int(n), 0.5, alternative="greater").pvalue)
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
