"""The networks frnn trains, by name: ``model: rnn | lstm``.

Training, sweeps, the gradient check and random guessing see a network only through this
table: its parameter names, how to draw its weights, its forward pass, BPTT, end logits,
the norm of its state Jacobian over the whole sequence, and the number of pre-activations
per hidden unit (for the memory estimate). Nothing else branches on the model.

* ``rnn``  -- :mod:`frnn_cli.model`, the fully recurrent tanh network (W, R, V);
* ``lstm`` -- :mod:`frnn_cli.lstm`, the LSTM with a forget gate (W, R, b, V; Hochreiter &
  Schmidhuber 1997, Gers, Schmidhuber & Cummins 2000).

Letters: B sequences, T time steps, D inputs, I hidden units (memory cells), K outputs.
NumPy only; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Values of the ``model`` config key.
MODELS = ("rnn", "lstm")


@dataclass(frozen=True)
class Network:
    """One kind of network, as the training code uses it.

    Attributes
    ----------
    name : str
        "rnn" or "lstm".
    param_names : tuple of str
        Its parameters, e.g. ("W", "R", "V").
    gates : int
        Pre-activations per hidden unit: 1 for the RNN, 4 for the LSTM (o, i, f, g).
    init_params : callable (D, I, K, rng, init, init_scale, dtype, forget_bias) -> dict
    forward : callable (params, x (B, T, D), y) -> (mean loss, cache)
    backward : callable (params, cache) -> dict of gradients
    final_logits : callable (params, x (B, T, D)) -> z(T) (B, K)
    state_jacobian_norms : callable (params, x (B, T, D)) -> (B,) float64
        ||d state(T) / d state(1)||_2 per sequence: for the RNN the state is a, for the LSTM
        (a, c) -- the share of an error at step T that can reach step 1.
    network_class : callable (D, I, K, rng, init, init_scale, dtype, ...) -> RecurrentNetwork
    """

    name: str
    param_names: tuple[str, ...]
    gates: int
    init_params: Callable[..., dict[str, np.ndarray]]
    forward: Callable[..., tuple[float, Any]]
    backward: Callable[..., dict[str, np.ndarray]]
    final_logits: Callable[..., np.ndarray]
    state_jacobian_norms: Callable[..., np.ndarray]
    network_class: Callable[..., Any]


def _rnn() -> Network:
    from frnn_cli import model, vanishing

    def init(D, I, K, rng, init="uniform", init_scale=0.01, dtype=np.float64, forget_bias=1.0):
        return model.init_params(D, I, K, rng, init=init, init_scale=init_scale, dtype=dtype)

    def jac(params, x):
        p64 = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        return vanishing.jacobian_norms(p64, np.asarray(x, dtype=np.float64), end_only=True)

    return Network("rnn", model.PARAM_NAMES, 1, init, model.forward, model.backward, model.final_logits, jac,
                   model.FullyRecurrentNetwork)


def _lstm() -> Network:
    from frnn_cli import lstm, vanishing_lstm

    def init(D, I, K, rng, init="uniform", init_scale=0.01, dtype=np.float64, forget_bias=1.0):
        return lstm.init_params(D, I, K, rng, init=init, init_scale=init_scale, forget_bias=forget_bias, dtype=dtype)

    def jac(params, x):
        p64 = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
        return vanishing_lstm.lstm_end_jacobian_norms(p64, np.asarray(x, dtype=np.float64))

    return Network("lstm", lstm.PARAM_NAMES, 4, init, lstm.forward, lstm.backward, lstm.final_logits, jac,
                   lstm.LSTMNetwork)


_BUILDERS = {"rnn": _rnn, "lstm": _lstm}
_CACHE: dict[str, Network] = {}


def get(name: str) -> Network:
    """The network called ``name``.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`MODELS`.
    """
    if name not in _BUILDERS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
    if name not in _CACHE:
        _CACHE[name] = _BUILDERS[name]()
    return _CACHE[name]


def param_names(name: str) -> tuple[str, ...]:
    """The parameter names of a model without importing its maths ("W", "R", "V" / "W", "R", "b", "V")."""
    return ("W", "R", "b", "V") if name == "lstm" else ("W", "R", "V")
