"""Optimizers (SGD, momentum, Adam) and global gradient-norm clipping, updating in place.

Parameters and gradients are dicts of named arrays ("W" (I, D), "R" (I, I), "V" (K, I)),
as :func:`frnn_cli.model.init_params` and :func:`frnn_cli.model.backward` produce them. An
optimizer updates exactly the arrays in the ``params`` dict it is given, so a frozen
parameter (config key ``freeze``) is simply left out of that dict.
Every update works in place with ``out=`` arguments, so a step allocates no new arrays;
the gradient arrays are used as scratch space and hold garbage afterwards. The state
(velocity, moments) is made with ``zeros_like`` of the parameters and every constant is a
Python float, which NumPy applies in the array's own dtype (NEP 50), so a float32 run's
update stays in float32 (tests/test_dtype.py checks it). This module is on the training
hot path (one call per step); NumPy only, no I/O.

Methods:

* ``sgd``: theta <- theta - eta g (plain gradient descent, the reference).
* ``momentum``: v <- mu v - eta g; theta <- theta + v (heavy ball; Polyak 1964, in the form of
  Sutskever et al. 2013, eq. 1-2).
* ``adam``: Kingma & Ba (2015), Algorithm 1, with the bias corrections folded into the step
  size as in their section 2 (mathematically identical to Algorithm 1).
* clipping: if ||g||_2 > c then g <- (c / ||g||_2) g, over the concatenation of all parameter
  gradients (Pascanu, Mikolov & Bengio 2013, Algorithm 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "adam")


class SGD:
    """Plain gradient descent: theta <- theta - eta g.

    Parameters
    ----------
    lr : float
        Learning rate eta, > 0.
    """

    def __init__(self, lr: float) -> None:
        self.lr = float(lr)

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Update every array in ``params`` in place from ``grads`` (same keys and shapes)."""
        lr = self.lr
        for name in params:
            g = grads[name]
            np.multiply(g, lr, out=g)
            np.subtract(params[name], g, out=params[name])


class Momentum:
    """Gradient descent with momentum: v <- mu v - eta g; theta <- theta + v.

    Parameters
    ----------
    lr : float
        Learning rate eta, > 0.
    mu : float
        Momentum coefficient in [0, 1); mu = 0 is plain SGD.
    """

    def __init__(self, lr: float, mu: float) -> None:
        self.lr, self.mu = float(lr), float(mu)
        self.velocity: dict[str, np.ndarray] = {}

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Update ``params`` in place; the velocity starts at 0 on the first call."""
        if not self.velocity:
            self.velocity = {n: np.zeros_like(params[n]) for n in params}
        for name in params:
            v, g = self.velocity[name], grads[name]
            np.multiply(v, self.mu, out=v)
            np.multiply(g, self.lr, out=g)
            np.subtract(v, g, out=v)
            np.add(params[name], v, out=params[name])


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1).

    With step count t = 1, 2, ...::

        m <- beta1 m + (1 - beta1) g
        v <- beta2 v + (1 - beta2) g^2
        theta <- theta - eta * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)

    computed as theta <- theta - eta_t m / (sqrt(v) + eps_t) with
    eta_t = eta sqrt(1 - beta2^t) / (1 - beta1^t) and eps_t = eps sqrt(1 - beta2^t), which is
    the same number with fewer array operations.

    Parameters
    ----------
    lr : float
        Learning rate eta, > 0.
    beta1, beta2 : float
        Decay rates of the first and second moment estimates, in [0, 1).
    eps : float
        Constant in the denominator, > 0.
    """

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.lr, self.beta1, self.beta2, self.eps = float(lr), float(beta1), float(beta2), float(eps)
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self._scratch: dict[str, np.ndarray] = {}

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Update ``params`` in place; the moment estimates start at 0 on the first call."""
        if not self.m:
            self.m = {n: np.zeros_like(params[n]) for n in params}
            self.v = {n: np.zeros_like(params[n]) for n in params}
            self._scratch = {n: np.empty_like(params[n]) for n in params}
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c2 = math.sqrt(1.0 - b2**self.t)
        lr_t = self.lr * c2 / (1.0 - b1**self.t)
        eps_t = self.eps * c2
        for name in params:
            g, m, v, tmp = grads[name], self.m[name], self.v[name], self._scratch[name]
            np.multiply(m, b1, out=m)
            np.multiply(g, 1.0 - b1, out=tmp)
            np.add(m, tmp, out=m)
            np.multiply(v, b2, out=v)
            np.multiply(g, g, out=tmp)
            np.multiply(tmp, 1.0 - b2, out=tmp)
            np.add(v, tmp, out=v)
            np.sqrt(v, out=tmp)
            np.add(tmp, eps_t, out=tmp)
            np.divide(m, tmp, out=tmp)
            np.multiply(tmp, lr_t, out=tmp)
            np.subtract(params[name], tmp, out=params[name])


def make_optimizer(name: str, lr: float, momentum: float = 0.9, beta1: float = 0.9,
                   beta2: float = 0.999, eps: float = 1e-8) -> SGD | Momentum | Adam:
    """The optimizer called ``name`` ("sgd", "momentum" or "adam") with its settings.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`OPTIMIZERS`.
    """
    if name == "sgd":
        return SGD(lr)
    if name == "momentum":
        return Momentum(lr, momentum)
    if name == "adam":
        return Adam(lr, beta1, beta2, eps)
    raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")


def clip_global_norm(grads: Mapping[str, np.ndarray], norm: float, threshold: float) -> float:
    """Rescale the gradients in place so that their global norm is at most ``threshold``.

    If ||g||_2 > c, every gradient array is multiplied by c / ||g||_2, where ||g||_2 is
    the norm of all parameter gradients concatenated (Pascanu et al. 2013, Algorithm 1).

    Parameters
    ----------
    grads : dict of arrays "W", "R", "V"
        Modified in place.
    norm : float
        ||g||_2, already computed by the caller (the training loop needs it anyway).
    threshold : float
        c > 0.

    Returns
    -------
    float, the factor applied (1.0 when no clipping happened).
    """
    if norm <= threshold:
        return 1.0
    scale = threshold / norm
    for name in grads:
        np.multiply(grads[name], scale, out=grads[name])
    return scale
