"""The training loop: minibatch BPTT on fresh task sequences, evaluation, early stopping, verdict.

:func:`train` is pure: it takes a :class:`frnn_cli.config.Config`, returns a
:class:`TrainResult` and reports progress only through an optional callback, called with
an :class:`EvalRecord` at every evaluation. It never prints, plots or writes files
(:func:`frnn_cli.runs.run_train_job` does that).

Randomness. ``np.random.SeedSequence(cfg.seed).spawn(4)`` gives four independent streams:
the initial weights, the training batches, the validation set and the test set. So the
validation and test sequences are drawn independently of (and, being continuous random
vectors, almost surely distinct from) every training sequence, and changing ``steps``,
``n_val`` or ``eval_every`` does not change the training batches.

Per step (the hot path): draw the batch (sampled in chunks of several batches to save
NumPy calls), forward, BPTT, the squared norm of each gradient (one ``np.dot`` each; it
feeds the divergence check, clipping and the logged gradient norms), the update. Nothing
else: evaluation runs every ``eval_every`` steps.

The verdict: the best validation checkpoint (highest validation accuracy, ties broken by
lower validation loss) is evaluated on ``n_test`` fresh sequences, and a one-sided exact
binomial test asks whether its number of correct answers k exceeds what a coin would give
(H0: accuracy = 0.5; p = P(X >= k), X ~ Binomial(n_test, 0.5)).

Letters: B sequences in a batch, T time steps, D = 1 input, I hidden units, K = 1 output.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields

import numpy as np

from frnn_cli.config import Config
from frnn_cli.data import sample_batch
from frnn_cli.errors import BadInput
from frnn_cli.experiment.verdict import chance_test
from frnn_cli import networks
from frnn_cli.model import bce_with_logits, final_logits
from frnn_cli.optim import clip_global_norm, make_optimizer
from frnn_cli.vanishing import spectral_norm

#: Validation sequences over which the Jacobian norm ||da(T)/da(1)||_2 is taken (median).
JACOBIAN_SEQUENCES = 32
#: Sequences per forward pass when evaluating, which bounds memory at (T+1) * 512 * I floats.
EVAL_CHUNK = 512
#: Upper bound on the floats in one chunk of pre-sampled training batches (512 kB of float64).
_SAMPLE_CHUNK_FLOATS = 2**16
#: Most batches sampled in one call. Measured at B = 32, T = 20: 17 us per batch drawn
#: alone, 10 us in chunks of 16 (more gains nothing, and larger chunks fall out of cache).
_SAMPLE_CHUNK_MAX = 16



@dataclass(frozen=True)
class EvalRecord:
    """Everything measured at one evaluation; one row of ``metrics.csv``.

    Attributes
    ----------
    step : int
        Number of updates done so far (0 = the initial weights).
    train_loss : float
        Mean training batch loss (nats per sequence) over the steps since the previous
        evaluation; NaN at step 0.
    train_loss_max : float
        Largest single-batch training loss over those steps (a catapult's spike, which the
        mean dilutes); NaN at step 0.
    R_jump : float
        The largest factor by which one update multiplied ||R||_F over those steps, counting
        only updates that left ||R||_F >= 1 (where tanh units start to saturate); 1.0 if
        none did, NaN at step 0. A stable gradient step changes R by a little; an update
        that throws R into saturation (x3 and more) is a blow-up into a latch.
    val_loss : float
        Mean validation loss (nats per sequence); chance level is ln 2 = 0.693.
    val_acc : float
        Fraction of validation sequences classified correctly (sigmoid(z(T)) > 0.5 for class 1).
    grad_norm_W, grad_norm_R, grad_norm_V : float
        Mean over the steps since the previous evaluation of the Euclidean (Frobenius) norm
        of each parameter's training gradient, before clipping; NaN at step 0.
    R_spectral_norm : float
        ||R||_2, the largest singular value of R.
    jacobian_norm : float
        Median over the first min(n_val, 32) validation sequences of ||da(T)/da(1)||_2
        (:func:`frnn_cli.vanishing.jacobian_norms`); 1.0 when T = 1.
    """

    step: int
    train_loss: float
    train_loss_max: float
    R_jump: float
    val_loss: float
    val_acc: float
    grad_norm_W: float
    grad_norm_R: float
    grad_norm_V: float
    R_spectral_norm: float
    jacobian_norm: float

    def as_dict(self) -> dict[str, float]:
        """The record as a plain dict (column name -> value)."""
        return asdict(self)


#: Columns of metrics.csv, in order.
METRICS_COLUMNS = tuple(f.name for f in fields(EvalRecord))


@dataclass(frozen=True)
class TestResult:
    """Test-set evaluation of the best checkpoint and its test against chance.

    Attributes
    ----------
    n : int
        Number of fresh test sequences.
    correct : int
        Sequences classified correctly, k.
    accuracy : float
        k / n.
    loss : float
        Mean test loss (nats per sequence).
    p_value : float
        One-sided exact binomial p-value P(X >= k), X ~ Binomial(n, 0.5).
    alpha : float
        Significance level.
    better_than_chance : bool
        ``p_value < alpha``.
    """

    __test__ = False  # not a pytest test class

    n: int
    correct: int
    accuracy: float
    loss: float
    p_value: float
    alpha: float
    better_than_chance: bool

    @property
    def verdict(self) -> str:
        """"better than chance at alpha=0.01" or "NOT better than chance at alpha=0.01"."""
        word = "better" if self.better_than_chance else "NOT better"
        return f"{word} than chance at alpha={self.alpha:g}"

    def as_dict(self) -> dict:
        """The fields plus "verdict", as a plain dict."""
        return {**asdict(self), "verdict": self.verdict}


@dataclass(frozen=True)
class Divergence:
    """Why and when a run diverged.

    Attributes
    ----------
    step : int
        The update whose loss or gradient was bad (it was not applied).
    reason : str
        One line, e.g. "training loss 1.8e+06 > diverge_loss=1000".
    """

    step: int
    reason: str


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    status : str
        "completed" or "diverged".
    stop_reason : str
        "steps" (all steps done), "converged" (validation accuracy 1.0 and loss below
        ``stop_loss``), "patience" (no new best checkpoint for ``patience`` evaluations) or
        "diverged".
    steps_done : int
        Updates applied.
    history : list of EvalRecord
        One per evaluation, in step order (the first at step 0).
    best : EvalRecord
        The best validation checkpoint's record (highest val_acc, ties: lower val_loss).
    params : dict
        "W" (I, 1), "R" (I, I), "V" (1, I) in the run's dtype (``cfg.dtype``): the best
        checkpoint's weights.
    test : TestResult
        The best checkpoint on the test set.
    divergence : Divergence or None
        Set when status is "diverged".
    seconds : float
        Wall time of the call up to the test-set evaluation, in seconds (what follows, the
        binomial test, takes microseconds once scipy.special is imported).
    st1_sequences, st2_sequences : int or None
        Training sequences seen (steps x batch size) at the first evaluation where the LSTM
        paper's ST1 / ST2 held on fresh sequences (:func:`paper_criteria`), or None if never
        before the run stopped. Checked at evaluations only, so a multiple of
        ``eval_every * batch_size``.
    trials : int or None
        optimizer=guess: the trials drawn (the winner's k + 1, or all of them when none
        solved); None for gradient training.
    trial : int or None
        optimizer=guess: index k (from 0) of the network tested and stored -- the winner, or,
        when none solved, the first of the most accurate trials; ``frnn_cli.guess.draw_trial``
        re-draws it from k and the run's seed. None for gradient training.
    """

    status: str
    stop_reason: str
    steps_done: int
    history: list[EvalRecord]
    best: EvalRecord
    params: dict[str, np.ndarray]
    test: TestResult
    divergence: Divergence | None
    seconds: float
    st1_sequences: int | None = None
    st2_sequences: int | None = None
    trials: int | None = None
    trial: int | None = None

    @property
    def best_step(self) -> int:
        """Step of the best validation checkpoint."""
        return self.best.step


#: The random streams of a run, in the order of ``SeedSequence(seed).spawn``: appending a
#: stream never changes the ones before it, so old runs stay reproducible.
STREAMS = ("init", "train", "val", "test", "criteria", "screen")


def streams(seed: int) -> dict[str, np.random.Generator]:
    """The independent random streams of a run, derived from its seed.

    Returns
    -------
    dict with generators "init" (the weights), "train" (the batches), "val", "test",
    "criteria" (the fresh sequences of the ST1/ST2 checks) and "screen" (random guessing's
    screening set), from ``np.random.SeedSequence(seed).spawn(6)`` in that order.
    """
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(ss) for name, ss in zip(STREAMS, children)}


def training_batches(
    rng: np.random.Generator, B: int, T: int, dtype: np.dtype | type = np.float64
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless fresh training batches x (B, T, 1), y (B, 1) of ``dtype``.

    Batches are drawn ``n`` at a time with one :func:`frnn_cli.data.sample_batch` call of
    n * B sequences and handed out as contiguous slices, which costs a fraction of the
    NumPy calls of drawing each batch alone. n = min(16, 2^16 // (B T)), at least 1, so
    the stream is a pure function of (rng state, B, T); the dtype only rounds the values.
    """
    n = max(1, min(_SAMPLE_CHUNK_MAX, _SAMPLE_CHUNK_FLOATS // (B * T)))
    while True:
        x, y = sample_batch(rng, n * B, T, dtype)
        for i in range(n):
            yield x[i * B:(i + 1) * B], y[i * B:(i + 1) * B]


def evaluate(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
             logits: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray] = final_logits) -> tuple[float, int]:
    """Mean loss and number of correct classifications on a set of sequences.

    A sequence is classified as class 1 when its logit z(T) is > 0 (sigmoid(z) > 0.5).
    The set is processed in chunks of :data:`EVAL_CHUNK` sequences.

    Parameters
    ----------
    params : dict of the network's parameters
    x : ndarray (N, T, D)
    y : ndarray (N, 1), targets 0.0 or 1.0
        The forward pass and the loss run in the parameters' dtype (x and y should have it).
    logits : callable (params, x (n, T, D)) -> z(T) (n, 1)
        The network's ``final_logits`` (:mod:`frnn_cli.networks`); default the RNN's.

    Returns
    -------
    loss : float
        Mean binary cross-entropy, nats per sequence.
    correct : int
    """
    N = x.shape[0]
    total, correct = 0.0, 0
    for lo in range(0, N, EVAL_CHUNK):
        xc, yc = x[lo:lo + EVAL_CHUNK], y[lo:lo + EVAL_CHUNK]
        z = logits(params, xc)  # (n, 1)
        total += float(bce_with_logits(z, yc).sum())
        correct += int(np.count_nonzero((z > 0.0) == (yc > 0.5)))
    return total / N, correct


#: Fresh sequences of each ST1/ST2 check, as in the LSTM paper (Hochreiter & Schmidhuber
#: 1997, Experiment 3a: "none of 256 random test sequences misclassified").
CRITERIA_SEQUENCES = 256
#: ST2's bound on the mean absolute error |sigmoid(z(T)) - y| over those sequences.
ST2_ERROR = 0.01


def paper_criteria(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
                   logits: Callable[[dict[str, np.ndarray], np.ndarray], np.ndarray]) -> tuple[bool, bool]:
    """The LSTM paper's stop criteria on a batch of fresh sequences: (ST1, ST2).

    ST1: no sequence misclassified. ST2: ST1, and the mean absolute error
    |sigmoid(z(T)) - y| below :data:`ST2_ERROR` (Hochreiter & Schmidhuber 1997, section 5.3).

    Parameters
    ----------
    params : dict of the network's parameters
    x : ndarray (S, T, D), y : ndarray (S, 1)
    logits : the network's ``final_logits``

    Returns
    -------
    (bool, bool)
    """
    z = logits(params, x).astype(np.float64)
    st1 = bool(np.all((z > 0.0) == (y > 0.5)))
    err = float(np.mean(np.abs(0.5 * (1.0 + np.tanh(0.5 * z)) - y)))
    return st1, st1 and err < ST2_ERROR


def describe(cfg: Config) -> str:
    """A one-line description of a run's setting, for titles and logs.

    Example: "T=2, lr=1, sgd, hidden=32, init uniform ±0.01, B=32, seed 0"; a float32 run
    ends with ", float32" (float64, the default, is not named).
    """
    init = f"uniform ±{cfg.init_scale:g}" if cfg.init == "uniform" else cfg.init
    frozen = f", {cfg.freeze} frozen" if cfg.freeze != "none" else ""
    dtype = "" if cfg.dtype == "float64" else f", {cfg.dtype}"
    model = "" if cfg.model == "rnn" else f"{cfg.model} (forget bias {cfg.forget_bias:g}), "
    if cfg.optimizer == "guess":  # no learning rate, no batches: trials
        return (f"T={cfg.T}, {model}random guessing, hidden={cfg.hidden}, init {init}, {cfg.screen_n} screening "
                f"sequences, seed {cfg.seed}{dtype}")
    opt = cfg.optimizer + (f" (clip {cfg.clip:g})" if cfg.clip is not None else "")
    return (f"T={cfg.T}, {model}lr={cfg.lr:g}, {opt}, hidden={cfg.hidden}, init {init}{frozen}, B={cfg.batch_size}, "
            f"seed {cfg.seed}{dtype}")


def trainable_names(freeze: str, names: tuple[str, ...]) -> list[str]:
    """The parameters a run updates: ``names`` minus those in ``freeze`` ("W+R", "none").

    Raises
    ------
    BadInput
        If ``freeze`` names a parameter the model does not have, or freezes all of them.
    """
    frozen = [] if freeze == "none" else freeze.split("+")
    unknown = [n for n in frozen if n not in names]
    if unknown:
        raise BadInput(f"freeze: this model has no parameter {unknown[0]!r} (it has {', '.join(names)})")
    left = [n for n in names if n not in frozen]
    if not left:
        raise BadInput(f"freeze={freeze} freezes every parameter; nothing would learn")
    return left


def check_config(cfg: Config) -> None:
    """Refuse, before any folder is made, settings that are valid key by key but not together.

    Raises
    ------
    BadInput
        If ``freeze`` names a parameter the model lacks or freezes every parameter, or
        random guessing (which draws every weight) is asked to freeze some.
    """
    trainable_names(cfg.freeze, networks.param_names(cfg.model))
    if cfg.optimizer == "guess" and cfg.freeze != "none":
        raise BadInput(f"freeze={cfg.freeze}: optimizer=guess draws every weight afresh; it cannot freeze any")


def _is_better(rec: EvalRecord, best: EvalRecord | None) -> bool:
    if best is None:
        return True
    return rec.val_acc > best.val_acc or (rec.val_acc == best.val_acc and rec.val_loss < best.val_loss)


def train(cfg: Config, callback: Callable[[EvalRecord], None] | None = None,
          on_best: Callable[[EvalRecord, dict[str, np.ndarray]], None] | None = None) -> TrainResult:
    """Train a fully recurrent network on the 2-sequence task with minibatch BPTT.

    Each step draws B = ``cfg.batch_size`` fresh sequences of length T, computes the
    mean loss L(T) and its gradients by BPTT (:mod:`frnn_cli.model`), optionally clips the
    global gradient norm (Pascanu et al. 2013), and updates W, R, V with ``cfg.optimizer``
    (:mod:`frnn_cli.optim`). At step 0, every ``cfg.eval_every`` steps and at the last step
    it evaluates on the fixed validation set (``cfg.n_val`` sequences), builds an
    :class:`EvalRecord`, keeps a copy of the weights if they are the best so far, calls
    ``callback(record)`` and checks early stopping.

    Every array of the run -- weights, training batches, validation and test sets,
    activations, gradients, optimizer state -- has the dtype ``cfg.dtype``; the draws are
    the same in float32 and float64 (rounded once). The diagnostics ||R||_2 and
    ||da(T)/da(1)||_2 are computed from a float64 copy of the weights: the Jacobian norm
    falls like ||R||_2^(T-1) and leaves float32's range (below 1e-38, the underflow to
    0) after about 30 steps at the reference initialisation, where float64 still resolves it.

    Stops early when validation accuracy is 1.0 and validation loss < ``cfg.stop_loss``
    (unless null), or after ``cfg.patience`` evaluations without a new best (unless 0).
    A training loss that is NaN, inf or above ``cfg.diverge_loss``, or a non-finite
    gradient, stops the run with status "diverged" (the bad update is not applied);
    nothing is raised.

    Parameters
    ----------
    cfg : Config
    callback : callable, optional
        Called with each EvalRecord, in step order. It may raise (e.g. KeyboardInterrupt
        to stop); the exception propagates.
    on_best : callable, optional
        Called as ``on_best(record, params)`` with each new best checkpoint (after
        ``callback``), ``params`` the copy kept as the best weights (do not modify); e.g. to
        save it, so that a killed run still leaves its best network. Not called by random
        guessing, which has no checkpoints.

    Returns
    -------
    TrainResult

    Raises
    ------
    KeyboardInterrupt
        Propagated unchanged (from Ctrl-C or the callback).
    """
    if cfg.optimizer == "guess":
        from frnn_cli.guess import train_by_guessing

        return train_by_guessing(cfg, callback)
    t_start = time.perf_counter()
    rng = streams(cfg.seed)
    dtype = np.dtype(cfg.dtype)
    net = networks.get(cfg.model)
    forward, backward, names = net.forward, net.backward, net.param_names
    params = net.init_params(1, cfg.hidden, 1, rng["init"], init=cfg.init, init_scale=cfg.init_scale, dtype=dtype,
                             forget_bias=cfg.forget_bias)
    x_val, y_val = sample_batch(rng["val"], cfg.n_val, cfg.T, dtype)
    x_jac = x_val[:JACOBIAN_SEQUENCES].astype(np.float64)
    optimizer = make_optimizer(cfg.optimizer, cfg.lr, cfg.momentum, cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps)
    trainable = trainable_names(cfg.freeze, names)
    # The optimizer sees only the trainable arrays (the same memory as ``params``).
    learning = {n: params[n] for n in trainable}
    batches = training_batches(rng["train"], cfg.batch_size, cfg.T, dtype)

    history: list[EvalRecord] = []
    best: EvalRecord | None = None
    best_params: dict[str, np.ndarray] = {}
    since_best = 0
    st1_step: int | None = None
    st2_step: int | None = None
    nan = float("nan")
    extra = [n for n in names if n not in ("W", "R", "V")]

    def record(step: int, train_loss: float, gnorms: tuple[float, float, float], loss_max: float = nan,
               R_jump: float = nan) -> EvalRecord:
        nonlocal best, best_params, since_best
        nonlocal st1_step, st2_step
        val_loss, correct = evaluate(params, x_val, y_val, net.final_logits)
        if st2_step is None:  # the LSTM paper's criteria, on fresh sequences at every evaluation
            x_c, y_c = sample_batch(rng["criteria"], CRITERIA_SEQUENCES, cfg.T, dtype)
            st1, st2 = paper_criteria(params, x_c, y_c, net.final_logits)
            st1_step = step if st1 and st1_step is None else st1_step
            st2_step = step if st2 else None
        p64 = {n: params[n].astype(np.float64) for n in names}  # diagnostics in float64; see the docstring
        rec = EvalRecord(
            step=step,
            train_loss=train_loss,
            train_loss_max=loss_max,
            R_jump=R_jump,
            val_loss=val_loss,
            val_acc=correct / cfg.n_val,
            grad_norm_W=gnorms[0],
            grad_norm_R=gnorms[1],
            grad_norm_V=gnorms[2],
            R_spectral_norm=spectral_norm(p64["R"]),
            jacobian_norm=float(np.median(net.state_jacobian_norms(p64, x_jac))),
        )
        history.append(rec)
        if _is_better(rec, best):
            best, since_best = rec, 0
            best_params = {n: params[n].copy() for n in names}
        else:
            since_best += 1
        if callback is not None:
            callback(rec)
        if on_best is not None and best is rec:
            on_best(rec, best_params)
        return rec

    status, stop_reason, divergence = "completed", "steps", None
    steps_done = 0
    clip = cfg.clip
    diverge_loss = cfg.diverge_loss
    eval_every = cfg.eval_every
    # Sums since the last evaluation: loss, ||dW||, ||dR||, ||dV||; and the largest batch loss
    # and one-update growth of ||R||_F^2 into the saturating range (see EvalRecord.R_jump).
    loss_sum = nW = nR = nV = 0.0
    loss_max, jump_sq = -math.inf, 1.0
    n_since = 0
    dot, sqrt = np.dot, math.sqrt
    R_flat = params["R"].ravel()  # a view: the optimizer updates R in place
    R_sq = float(dot(R_flat, R_flat))
    # Overflow in a diverging run is detected explicitly below; NumPy should not warn about it.
    with np.errstate(all="ignore"):
        record(0, nan, (nan, nan, nan))
        for step in range(1, cfg.steps + 1):
            x, y = next(batches)
            loss, cache = forward(params, x, y)
            grads = backward(params, cache)
            gW, gR, gV = grads["W"].ravel(), grads["R"].ravel(), grads["V"].ravel()
            sW, sR, sV = float(dot(gW, gW)), float(dot(gR, gR)), float(dot(gV, gV))
            gsq = sW + sR + sV
            if extra:  # the LSTM's biases b
                gsq += sum(float(dot(g, g)) for g in (grads[n].ravel() for n in extra))
            # NaN fails every comparison, so these two tests also catch NaN.
            if not (loss <= diverge_loss and gsq < math.inf):
                status = stop_reason = "diverged"
                if not math.isfinite(loss):
                    why = f"non-finite training loss ({loss})"
                elif loss > diverge_loss:
                    why = f"training loss {loss:.3g} > diverge_loss={diverge_loss:g}"
                else:
                    why = "non-finite gradient"
                divergence = Divergence(step, why)
                break
            applied = {n: grads[n] for n in trainable}
            if clip is not None:
                norm = sqrt(gsq) if len(trainable) == len(names) else sqrt(
                    sum(float(dot(g.ravel(), g.ravel())) for g in applied.values()))
                clip_global_norm(applied, norm, clip)
            optimizer.step(learning, applied)
            R_sq_new = float(dot(R_flat, R_flat))
            if R_sq_new >= 1.0 and R_sq_new > jump_sq * R_sq:
                jump_sq = R_sq_new / R_sq
            R_sq = R_sq_new
            steps_done = step
            loss_sum += loss
            if loss > loss_max:
                loss_max = loss
            nW += sqrt(sW)
            nR += sqrt(sR)
            nV += sqrt(sV)
            n_since += 1
            if step % eval_every == 0 or step == cfg.steps:
                k = n_since
                rec = record(step, loss_sum / k, (nW / k, nR / k, nV / k), loss_max, sqrt(jump_sq))
                loss_sum = nW = nR = nV = 0.0
                loss_max, jump_sq = -math.inf, 1.0
                n_since = 0
                if cfg.stop_loss is not None and rec.val_acc == 1.0 and rec.val_loss < cfg.stop_loss:
                    stop_reason = "converged"
                    break
                if cfg.patience and since_best >= cfg.patience:
                    stop_reason = "patience"
                    break

        assert best is not None  # the step-0 record always exists
        x_test, y_test = sample_batch(rng["test"], cfg.n_test, cfg.T, dtype)
        test_loss, correct = evaluate(best_params, x_test, y_test, net.final_logits)
    # Timed before the chance test, whose first call in a process imports scipy.special (~0.3 s).
    seconds = time.perf_counter() - t_start
    ct = chance_test(correct, cfg.n_test, cfg.alpha)
    test = TestResult(
        n=cfg.n_test, correct=correct, accuracy=ct.accuracy, loss=test_loss,
        p_value=ct.p_value, alpha=cfg.alpha, better_than_chance=ct.better,
    )
    return TrainResult(
        status=status, stop_reason=stop_reason, steps_done=steps_done, history=history, best=best,
        params=best_params, test=test, divergence=divergence, seconds=seconds,
        st1_sequences=None if st1_step is None else st1_step * cfg.batch_size,
        st2_sequences=None if st2_step is None else st2_step * cfg.batch_size,
    )
