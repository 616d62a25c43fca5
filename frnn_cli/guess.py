"""Random weight guessing: draw whole networks at random until one solves the screening set.

Schmidhuber, Hochreiter & Bengio (2001), "Evaluating benchmark problems by random
guessing" (in Kolen & Kremer, eds., *A Field Guide to Dynamical Recurrent Networks*),
argue that a long-time-lag benchmark only shows something about a learning algorithm if
it cannot be solved faster by the loop

    REPEAT draw every weight at random; test the network UNTIL it solves the task

and report that the latch problem of Bengio, Simard & Frasconi (1994) falls to it within
6 trials on average (their latch variant I), against 1,600 for the gradient-based
methods studied there. This module is that loop for frnn's fully
recurrent network (no biases), with the same initialisation distributions as
:func:`frnn_cli.model.init_params`. The default criterion is the LSTM paper's ST1
(Hochreiter & Schmidhuber 1997, "Long Short-Term Memory", Experiment 3a): none of 256
screening sequences misclassified, where a sequence counts as class 1 when its logit
z(T) > 0 (the rule of :func:`frnn_cli.train.evaluate`).

Letters: N candidate networks, S screening sequences, T time steps, D inputs, I hidden
units, K outputs.

The networks are judged by the stacked forward passes of :mod:`frnn_cli.stacked`.

Reproducible, re-drawable trials. Trial k (k = 0, 1, 2, ...) draws its weights from
``np.random.default_rng(trial_seed(seed, k))``, with
``trial_seed(seed, k) = SeedSequence(entropy=seed, spawn_key=(k,))`` -- the k-th child
of ``SeedSequence(seed).spawn`` -- in the order and with the distributions of
``init_params``. So a run's winner can be re-drawn from (seed, k) alone
(:func:`draw_trial`), and the result of :func:`search` does not depend on how trials are
grouped into chunks.

NumPy only: no printing, no files; progress goes to an optional callback.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from frnn_cli import networks
from frnn_cli.errors import BadInput
from frnn_cli.stacked import STACKED_LOGITS, count_correct, stacked_logits

#: Default number of trials drawn and judged per step of :func:`search` (one history row
#: each). It bounds the trials evaluated past the winner; the result does not depend on it.
CHUNK = 64

#: Default number of screening sequences (the LSTM paper's ST1 test set size).
N_SCREEN = 256


def trial_seed(seed: int | np.random.SeedSequence, k: int) -> np.random.SeedSequence:
    """The seed of trial k: the k-th child of ``seed``'s spawn tree.

    ``SeedSequence(entropy=seed, spawn_key=(k,))`` for an int seed, which is what
    ``SeedSequence(seed).spawn(k + 1)[k]`` returns; for a SeedSequence ``ss`` (e.g.
    ``SeedSequence(cfg.seed).spawn(4)[0]``, the seed of the "init" stream of
    :func:`frnn_cli.train.streams`) the key is ``ss.spawn_key + (k,)``, again the k-th
    child of a fresh ``ss.spawn``. Children of one parent are independent
    streams (NumPy's SeedSequence design).

    Parameters
    ----------
    seed : int >= 0 or np.random.SeedSequence
    k : int >= 0

    Returns
    -------
    np.random.SeedSequence
    """
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(entropy=seed.entropy, spawn_key=tuple(seed.spawn_key) + (int(k),),
                                      pool_size=seed.pool_size)
    return np.random.SeedSequence(entropy=int(seed), spawn_key=(int(k),))


def draw_trial(
    k: int,
    seed: int | np.random.SeedSequence,
    D: int,
    I: int,
    K: int,
    init: str,
    init_scale: float,
    dtype: np.dtype | type = np.float64,
    model: str = "rnn",
    forget_bias: float = 1.0,
) -> dict[str, np.ndarray]:
    """Re-draw trial k's weights alone (the definition of a trial's candidate).

    ``init_params(D, I, K, np.random.default_rng(trial_seed(seed, k)), init, init_scale,
    dtype)``. :func:`draw_trials` produces the same arrays bit for bit, stacked.

    Parameters
    ----------
    k : int >= 0, trial index
    seed : int or np.random.SeedSequence, the run's seed (see :func:`trial_seed`)
    D, I, K : int >= 1
    init, init_scale, dtype : as :func:`frnn_cli.model.init_params` (init_scale is the
        half-width of the uniform interval).

    Returns
    -------
    dict "W" (I, D), "R" (I, I), "V" (K, I) of ``dtype``.

    Raises
    ------
    ValueError
        As :func:`frnn_cli.model.init_params`.
    """
    return networks.get(model).init_params(D, I, K, np.random.default_rng(trial_seed(seed, k)), init=init,
                                           init_scale=init_scale, dtype=dtype, forget_bias=forget_bias)


def draw_trials(
    k0: int,
    k1: int,
    seed: int | np.random.SeedSequence,
    D: int,
    I: int,
    K: int,
    init: str,
    init_scale: float,
    dtype: np.dtype | type = np.float64,
    model: str = "rnn",
    forget_bias: float = 1.0,
) -> dict[str, np.ndarray]:
    """Trials k0..k1-1 stacked: W (N, I, D), R (N, I, I), V (N, K, I), N = k1 - k0 (for the
    LSTM: W (N, 4I, D), R (N, 4I, I), b (N, 4I), V (N, K, I)).

    Row j is :func:`draw_trial` (k0 + j, ...) itself, so a stacked trial and the same
    trial re-drawn alone are equal bit for bit by construction. (Filling the stack from
    one ``Generator.random`` row per trial and scaling it in one pass was measured at
    9-12 us per trial against 14-17 us here; the saving is too small to justify relying
    on how ``Generator.uniform`` computes its values.)

    Parameters
    ----------
    k0, k1 : int, 0 <= k0 < k1
    seed, D, I, K, init, init_scale, dtype : as :func:`draw_trial`

    Returns
    -------
    dict of stacked C-contiguous arrays of ``dtype``.

    Raises
    ------
    ValueError
        If k0 < 0 or k1 <= k0, or as :func:`frnn_cli.model.init_params`.
    """
    if not 0 <= k0 < k1:
        raise ValueError(f"need 0 <= k0 < k1, got k0={k0}, k1={k1}")
    trials = [draw_trial(k, seed, D, I, K, init, init_scale, dtype, model, forget_bias) for k in range(k0, k1)]
    return {name: np.stack([p[name] for p in trials]) for name in trials[0]}


def unstack(params: dict[str, np.ndarray], j: int) -> dict[str, np.ndarray]:
    """Candidate j of a stack as its own C-contiguous arrays (copies), as init_params returns."""
    return {name: np.array(v[j], order="C") for name, v in params.items()}


@dataclass
class ChunkRecord:
    """Progress after one chunk of trials (one history row).

    Attributes
    ----------
    trials : int
        Trials evaluated so far (for the chunk holding the winner: the winner's k + 1).
    best_accuracy : float
        Highest screening accuracy among those trials, in [0, 1].
    seconds : float
        Wall time since the search started, in seconds.
    best_trial : int
        Index k of the (first) most accurate trial so far; :func:`draw_trial` re-draws it.
    """

    trials: int
    best_accuracy: float
    seconds: float
    best_trial: int = -1


@dataclass
class GuessResult:
    """Outcome of a random-guessing search.

    Attributes
    ----------
    trials : int
        k + 1 for the winner (trials needed), or ``max_trials`` when none met the criterion.
    solved : bool
        True when a trial met the criterion.
    trial : int
        Index k of the returned candidate: the winner (the lowest k meeting the criterion),
        or, unsolved, the lowest k among the most accurate candidates seen.
    params : dict
        That candidate's "W" (I, D), "R" (I, I), "V" (K, I), as init_params returns them.
    screen_accuracy : float
        Its accuracy on the screening set, in [0, 1].
    history : list of ChunkRecord
        One row per chunk evaluated.
    seconds : float
        Wall time of the whole search, in seconds.
    """

    trials: int
    solved: bool
    trial: int
    params: dict[str, np.ndarray]
    screen_accuracy: float
    history: list[ChunkRecord] = field(default_factory=list)
    seconds: float = 0.0


def needed_correct(S: int, target_accuracy: float) -> int:
    """Correct sequences out of S that meet ``target_accuracy``: ceil(target * S).

    A guard of 1e-9 keeps products like 0.7 * 10 = 7.000000000000001 at 7.

    Raises
    ------
    BadInput
        If target_accuracy is not in (0, 1].
    """
    if not 0.0 < target_accuracy <= 1.0:
        raise BadInput(f"target_accuracy: expected a number in (0, 1], got {target_accuracy!r}")
    return max(1, math.ceil(target_accuracy * S - 1e-9))


def search_candidates(
    draw: Callable[[int, int], dict[str, np.ndarray]],
    x: np.ndarray,
    y: np.ndarray,
    max_trials: int,
    chunk: int,
    target_accuracy: float = 1.0,
    callback: Callable[[ChunkRecord], None] | None = None,
    logits: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray] = stacked_logits,
) -> GuessResult:
    """Evaluate the candidates ``draw`` yields, chunk by chunk, until the first one solves.

    The search loop of Schmidhuber, Hochreiter & Bengio (2001) for any candidate source:
    trials k0..k1-1 come from ``draw(k0, k1)`` as a stack, are run on the screening set by
    :func:`stacked_logits`, and the search stops at the lowest k whose number of correct
    sequences is at least ``needed_correct(S, target_accuracy)``. Trials are judged one
    by one in k order, so the winner, ``trials`` and the returned parameters do not depend
    on ``chunk`` (only the history's rows do).

    Parameters
    ----------
    draw : callable (k0, k1) -> dict "W" (N, I, D), "R" (N, I, I), "V" (N, K, I)
        The candidates of trials k0..k1-1, N = k1 - k0.
    x : ndarray (S, T, D), screening sequences
    y : ndarray (S, K), their targets (0.0 or 1.0)
    max_trials : int >= 1
        Trials evaluated at most.
    chunk : int >= 1
        Trials drawn and evaluated per step of the loop (one history row each).
    target_accuracy : float in (0, 1], default 1.0 (every sequence correct: ST1 with S = 256)
    callback : callable(ChunkRecord) or None
        Called after every chunk.
    logits : callable (stacked params, x) -> z (N, S, K)
        The stacked forward pass: :func:`frnn_cli.stacked.stacked_logits` (RNN, default) or
        :func:`frnn_cli.stacked.stacked_lstm_logits`.

    Returns
    -------
    GuessResult

    Raises
    ------
    BadInput
        If max_trials or chunk is < 1 or target_accuracy is not in (0, 1].
    ValueError
        If x, y and the candidates' shapes do not fit together.
    """
    for name, v in (("max_trials", max_trials), ("chunk", chunk)):
        if isinstance(v, bool) or int(v) != v or v < 1:
            raise BadInput(f"{name}: expected an integer >= 1, got {v!r}")
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 3 or y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"x must be (S, T, D) and y (S, K) with the same S, got {x.shape} and {y.shape}")
    S = x.shape[0]
    need = needed_correct(S, target_accuracy)
    t_start = time.perf_counter()
    history: list[ChunkRecord] = []
    best_correct, best_k, best_params = -1, -1, None
    for k0 in range(0, int(max_trials), int(chunk)):
        k1 = min(int(max_trials), k0 + int(chunk))
        cand = draw(k0, k1)
        z = logits(cand, x)
        if z.shape[2] != y.shape[1]:
            raise ValueError(f"y must have K={z.shape[2]} columns, got {y.shape}")
        correct = count_correct(z, y)
        hits = np.flatnonzero(correct >= need)
        # Only trials up to the winner count, so the history's last row and the best
        # accuracy are the same for every chunk size.
        seen = correct[: hits[0] + 1] if hits.size else correct
        j = int(np.argmax(seen))  # the first of the most accurate
        if seen[j] > best_correct:
            best_correct, best_k, best_params = int(seen[j]), k0 + j, unstack(cand, j)
        done = k0 + len(seen)
        rec = ChunkRecord(trials=done, best_accuracy=best_correct / S, seconds=time.perf_counter() - t_start,
                          best_trial=best_k)
        history.append(rec)
        if callback is not None:
            callback(rec)
        if hits.size:
            w = int(hits[0])
            return GuessResult(trials=k0 + w + 1, solved=True, trial=k0 + w, params=unstack(cand, w),
                               screen_accuracy=int(correct[w]) / S, history=history,
                               seconds=time.perf_counter() - t_start)
    return GuessResult(trials=int(max_trials), solved=False, trial=best_k, params=best_params,
                       screen_accuracy=best_correct / S, history=history, seconds=time.perf_counter() - t_start)


def search(
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int | np.random.SeedSequence,
    hidden: int,
    init: str,
    init_scale: float,
    max_trials: int,
    target_accuracy: float = 1.0,
    chunk: int | None = None,
    dtype: np.dtype | type | None = None,
    callback: Callable[[ChunkRecord], None] | None = None,
) -> GuessResult:
    """Random weight guessing for frnn's RNN: the first trial that solves the screening set.

    Trial k draws every weight afresh (:func:`draw_trial`: W, R, V from ``init`` with
    half-width ``init_scale``, seeded by ``trial_seed(seed, k)``) and is tested on the
    screening set (x, y); the search stops at the lowest k with at least
    ceil(target_accuracy * S) sequences correct -- by default all, as the LSTM paper's
    ST1 with S = 256 (Hochreiter & Schmidhuber 1997, Experiment 3a). The method is the
    random guessing of Schmidhuber, Hochreiter & Bengio (2001). The winner can be
    re-drawn with ``draw_trial(result.trial, seed, D, hidden, K, init, init_scale, dtype)``.

    Parameters
    ----------
    x : ndarray (S, T, D), screening sequences (the caller draws them, e.g. 256 from
        :func:`frnn_cli.data.sample_batch` on a stream of its own)
    y : ndarray (S, K), their targets
    seed : int >= 0 or np.random.SeedSequence, the run's initialisation seed
    hidden : int >= 1, I
    init : {"uniform", "glorot", "orthogonal"}
    init_scale : float >= 0, half-width of the uniform interval
    max_trials : int >= 1
    target_accuracy : float in (0, 1], default 1.0
    chunk : int or None
        Trials per chunk (one history row each); default :data:`CHUNK`. The result does
        not depend on it; memory does not either (see :func:`stacked_logits`).
    dtype : float dtype or None
        Of the candidates' weights; default x's dtype.
    callback : callable(ChunkRecord) or None, called after each chunk

    Returns
    -------
    GuessResult

    Raises
    ------
    BadInput
        If max_trials, chunk or target_accuracy is out of range.
    ValueError
        If x and y do not fit, or as :func:`frnn_cli.model.init_params`.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 3 or y.ndim != 2:
        raise ValueError(f"x must be (S, T, D) and y (S, K), got {x.shape} and {y.shape}")
    dtype = np.dtype(x.dtype if dtype is None else dtype)
    D, K = x.shape[2], y.shape[1]
    if chunk is None:
        chunk = CHUNK

    def draw(k0: int, k1: int) -> dict[str, np.ndarray]:
        return draw_trials(k0, k1, seed, D, hidden, K, init, init_scale, dtype)

    return search_candidates(draw, x, y, max_trials=max_trials, chunk=chunk,
                             target_accuracy=target_accuracy, callback=callback)


def train_by_guessing(cfg: Any, callback: Callable[[Any], None] | None = None) -> Any:
    """``optimizer: guess``: a training run that draws networks instead of following a gradient.

    The run's streams (:func:`frnn_cli.train.streams`) give the screening set (``cfg.screen_n``
    sequences, the "screen" stream), the validation and test sets, and the trials' seed (the
    "init" stream's seed, so trial k is ``draw_trial(k, SeedSequence(cfg.seed).spawn(6)[0],
    ...)``). Up to ``cfg.steps`` trials are drawn from ``cfg.init`` / ``cfg.init_scale`` in
    chunks of :data:`CHUNK`; the first that classifies every screening sequence wins
    (:func:`search_candidates`). After each chunk the most accurate candidate so far is
    re-drawn, evaluated on the validation set and reported as an
    :class:`frnn_cli.train.EvalRecord` whose ``step`` is the number of trials drawn (train
    loss and gradient norms are NaN: there are none); the last record is the winner's.
    The winner (or, unsolved, the most accurate candidate) is then tested on fresh test
    sequences with the usual binomial test.

    Parameters
    ----------
    cfg : frnn_cli.config.Config with optimizer "guess"
    callback : callable(EvalRecord), optional

    Returns
    -------
    frnn_cli.train.TrainResult with ``trials`` set, ``steps_done`` = trials drawn, status
    "completed" and stop_reason "solved" or "steps" (no trial solved within ``cfg.steps``).

    Raises
    ------
    KeyboardInterrupt
        Propagated unchanged.
    BadInput
        If ``cfg.freeze`` is set (guessing draws every weight).
    """
    from frnn_cli import train as tr
    from frnn_cli.data import sample_batch
    from frnn_cli.experiment.verdict import chance_test
    from frnn_cli.vanishing import spectral_norm

    if cfg.freeze != "none":
        raise BadInput(f"freeze={cfg.freeze}: random guessing draws every weight; it cannot freeze any")
    t_start = time.perf_counter()
    rng = tr.streams(cfg.seed)
    dtype = np.dtype(cfg.dtype)
    net = networks.get(cfg.model)
    seed = np.random.SeedSequence(cfg.seed).spawn(len(tr.STREAMS))[0]  # the "init" stream's seed
    x_scr, y_scr = sample_batch(rng["screen"], cfg.screen_n, cfg.T, dtype)
    x_val, y_val = sample_batch(rng["val"], cfg.n_val, cfg.T, dtype)
    x_jac = x_val[:tr.JACOBIAN_SEQUENCES].astype(np.float64)
    history: list = []
    nan = float("nan")

    def draw(k0: int, k1: int) -> dict[str, np.ndarray]:
        return draw_trials(k0, k1, seed, 1, cfg.hidden, 1, cfg.init, cfg.init_scale, dtype, cfg.model,
                           cfg.forget_bias)

    def on_chunk(chunk: ChunkRecord) -> None:
        # The best candidate so far, re-drawn from its trial index, on the validation set.
        params = draw_trial(chunk.best_trial, seed, 1, cfg.hidden, 1, cfg.init, cfg.init_scale, dtype, cfg.model,
                            cfg.forget_bias)
        val_loss, correct = tr.evaluate(params, x_val, y_val, net.final_logits)
        p64 = {n: v.astype(np.float64) for n, v in params.items()}
        rec = tr.EvalRecord(step=chunk.trials, train_loss=nan, train_loss_max=nan, R_jump=nan, val_loss=val_loss,
                            val_acc=correct / cfg.n_val, grad_norm_W=nan, grad_norm_R=nan, grad_norm_V=nan,
                            R_spectral_norm=spectral_norm(p64["R"]),
                            jacobian_norm=float(np.median(net.state_jacobian_norms(p64, x_jac))))
        history.append(rec)
        if callback is not None:
            callback(rec)

    with np.errstate(all="ignore"):
        result = search_candidates(draw, x_scr, y_scr, max_trials=cfg.steps, chunk=CHUNK, callback=on_chunk,
                                   logits=STACKED_LOGITS[cfg.model])
        x_test, y_test = sample_batch(rng["test"], cfg.n_test, cfg.T, dtype)
        test_loss, correct = tr.evaluate(result.params, x_test, y_test, net.final_logits)
    seconds = time.perf_counter() - t_start
    ct = chance_test(correct, cfg.n_test, cfg.alpha)
    test = tr.TestResult(n=cfg.n_test, correct=correct, accuracy=ct.accuracy, loss=test_loss, p_value=ct.p_value,
                         alpha=cfg.alpha, better_than_chance=ct.better)
    return tr.TrainResult(status="completed", stop_reason="solved" if result.solved else "steps",
                          steps_done=result.trials, history=history, best=history[-1], params=result.params, test=test,
                          divergence=None, seconds=seconds, trials=result.trials, trial=result.trial)
