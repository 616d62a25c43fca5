"""The course notebook's object API, shared by every network frnn trains.

The assignment's notebook drives a network through four methods, and its calls must work
unchanged::

    model = FullyRecurrentNetwork(D, I, K)
    model.forward(np.random.uniform(-1, 1, (T, D)), 1)      # a scalar target
    FullyRecurrentNetwork.backward = my_backward            # the student's own backward
    model.backward()
    model.grad_check(1e-7, 1e-7)                            # checks *that* backward
    model.update(0.001)

:class:`RecurrentNetwork` implements these methods once for any network whose maths is
given as three pure functions of a parameter dict: ``forward(params, x, y) -> (loss,
cache)``, ``backward(params, cache) -> grads`` and ``final_logits(params, x) -> z``.
:class:`frnn_cli.model.FullyRecurrentNetwork` is one such network. The parameters are
instance attributes named after the maths (``W``, ``R``, ``V``, ...), and :attr:`params` is
a dict of those very arrays, so the training loop and the gradient check, which update them
in place, and the notebook, which reads ``model.W``, see the same memory.

Letters: B sequences in a batch, T time steps, D inputs, I hidden units, K outputs.
NumPy only; no I/O.
"""

from __future__ import annotations

import copy
import types
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np


def as_batch(x: Any, y: Any, K: int, dtype: np.dtype | type) -> tuple[np.ndarray, np.ndarray]:
    """Bring one sequence or a batch, and its target, to the batch-major shapes of the maths.

    Accepted forms (any other shape raises)::

        x (T, D), one sequence:  y a scalar or 0-d array (K = 1), or (K,)   target at the end
                                 y (T, K)                                  a target per step
        x (B, T, D), a batch:    y a scalar (K = 1; the same for every      target at the end
                                 sequence), (B,) (K = 1) or (B, K)
                                 y (B, T, K)                               a target per step

    Parameters
    ----------
    x : array-like, (T, D) or (B, T, D)
    y : scalar or array-like, see above
    K : int
        Number of outputs of the network.
    dtype : float dtype
        The network's dtype; x and y are converted to it, so that a float32 network is never
        fed float64 data (which would upcast every array of its forward pass).

    Returns
    -------
    x : ndarray (B, T, D) of ``dtype``
    y : ndarray (B, K) or (B, T, K) of ``dtype``

    Raises
    ------
    ValueError
        If x is not 2- or 3-dimensional, or y fits none of the forms above; the message
        names the shapes given and the shapes accepted.
    """
    x = np.asarray(x, dtype=dtype)
    y = np.asarray(y, dtype=dtype)
    shape_x, shape_y = x.shape, y.shape
    scalar_ok = K == 1
    if x.ndim == 2:
        T = shape_x[0]
        if shape_y == () and scalar_ok:
            return x[None], y.reshape(1, 1)
        if shape_y in ((K,), (T, K)):
            return x[None], y[None]
        accepted = [f"(K,)=({K},)", f"(T, K)=({T}, {K})"]
    elif x.ndim == 3:
        B, T = shape_x[:2]
        if shape_y == () and scalar_ok:
            return x, np.full((B, 1), y, dtype=dtype)
        if shape_y == (B,) and scalar_ok:
            return x, y.reshape(B, 1)
        if shape_y in ((B, K), (B, T, K)):
            return x, y
        accepted = [f"(B, K)=({B}, {K})", f"(B, T, K)=({B}, {T}, {K})"] + ([f"(B,)=({B},)"] if scalar_ok else [])
    else:
        raise ValueError(f"x must have shape (T, D) or (B, T, D), got {shape_x}")
    if scalar_ok:
        accepted.insert(0, "a scalar")
    raise ValueError(f"target y has shape {shape_y} for x of shape {shape_x}; expected {' or '.join(accepted)}")


class RecurrentNetwork:
    """Parameters as named attributes plus the notebook's ``forward / backward / update /
    grad_check`` methods, for a network whose maths lives in pure functions.

    A subclass sets :attr:`PARAM_NAMES` and the three functions below (as staticmethods),
    then calls ``super().__init__(params)`` with a dict of initial arrays.

    Attributes
    ----------
    PARAM_NAMES : tuple of str
        The parameters' names, in the order :meth:`backward` returns their gradients.
    <name> : ndarray
        Each parameter, e.g. ``W`` (I, D), ``R`` (I, I), ``V`` (K, I) for the RNN.
    d<name> : ndarray or None
        Its gradient from the last :meth:`backward` (``dW``, ``dR``, ``dV``, ...).
    """

    PARAM_NAMES: ClassVar[tuple[str, ...]] = ()
    #: forward(params, x (B, T, D), y (B, K) or (B, T, K)) -> (mean loss, cache)
    _forward: ClassVar[Callable[..., tuple[float, Any]]]
    #: backward(params, cache) -> dict name -> gradient (same shapes as params)
    _backward: ClassVar[Callable[..., dict[str, np.ndarray]]]
    #: final_logits(params, x (B, T, D)) -> z(T) (B, K)
    _final_logits: ClassVar[Callable[..., np.ndarray]]

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        for name in self.PARAM_NAMES:
            setattr(self, name, params[name])
            setattr(self, "d" + name, None)
        self._cache: Any = None
        self._batch: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The parameter arrays themselves (not copies), keyed by :attr:`PARAM_NAMES`."""
        return {name: getattr(self, name) for name in self.PARAM_NAMES}

    @property
    def dtype(self) -> np.dtype:
        """The float dtype of the parameters (and of every array of a forward pass)."""
        return getattr(self, self.PARAM_NAMES[0]).dtype

    @property
    def K(self) -> int:
        """Number of outputs (rows of the read-out V)."""
        return int(self.V.shape[0])

    def forward(self, x: Any, y: Any) -> float:
        """Mean loss over the batch; keeps what :meth:`backward` needs.

        Parameters
        ----------
        x : array-like (T, D) or (B, T, D)
        y : the target: a scalar (K = 1), (K,) / (B,) / (B, K) at the end of each
            sequence, or (T, K) / (B, T, K) at every step (the loss then sums over t).
            See :func:`as_batch`.

        Returns
        -------
        float, the mean loss in nats.

        Raises
        ------
        ValueError
            If the shapes do not fit the network (the message names them).
        """
        xb, yb = as_batch(x, y, self.K, self.dtype)
        loss, self._cache = type(self)._forward(self.params, xb, yb)
        self._batch = (xb, yb)
        return loss

    def logits(self, x: Any) -> np.ndarray:
        """Logits z(T) = V a(T) at the end of each sequence.

        Parameters
        ----------
        x : array-like (B, T, D) or (T, D)

        Returns
        -------
        ndarray (B, K) (B = 1 for a single sequence)

        Raises
        ------
        ValueError
            If x is not 2- or 3-dimensional or its D does not fit the network.
        """
        xb = np.asarray(x, dtype=self.dtype)
        if xb.ndim == 2:
            xb = xb[None]
        elif xb.ndim != 3:
            raise ValueError(f"x must have shape (T, D) or (B, T, D), got {xb.shape}")
        return type(self)._final_logits(self.params, xb)

    def backward(self) -> tuple[np.ndarray, ...]:
        """Gradients of the last :meth:`forward`'s loss by backpropagation through time.

        Returns
        -------
        tuple of the gradients in :attr:`PARAM_NAMES` order, e.g. (dW, dR, dV); also
        stored as ``self.dW``, ``self.dR``, ...

        Raises
        ------
        RuntimeError
            If :meth:`forward` has not been called.
        """
        if self._cache is None:
            raise RuntimeError("backward() needs a forward() first")
        g = type(self)._backward(self.params, self._cache)
        for name in self.PARAM_NAMES:
            setattr(self, "d" + name, g[name])
        return tuple(g[name] for name in self.PARAM_NAMES)

    def update(self, eta: float) -> None:
        """One gradient-descent step in place: theta <- theta - eta * dtheta, every parameter.

        Raises
        ------
        RuntimeError
            If :meth:`backward` has not been called.
        """
        grads = [getattr(self, "d" + name) for name in self.PARAM_NAMES]
        if any(g is None for g in grads):
            raise RuntimeError("update() needs a backward() first")
        for name, g in zip(self.PARAM_NAMES, grads):
            p = getattr(self, name)
            p -= np.asarray(eta * g, dtype=p.dtype)

    def _analytic_gradients(self) -> dict[str, np.ndarray]:
        """Call ``self.backward()`` -- whatever is bound there -- and collect its gradients.

        A backward that returns a tuple in :attr:`PARAM_NAMES` order is taken at its word;
        one that returns nothing is read from ``self.dW``, ``self.dR``, ...
        """
        out = self.backward()
        if isinstance(out, (tuple, list)) and len(out) == len(self.PARAM_NAMES):
            grads = dict(zip(self.PARAM_NAMES, out))
        else:
            grads = {name: getattr(self, "d" + name, None) for name in self.PARAM_NAMES}
        missing = [name for name, g in grads.items() if g is None]
        if missing:
            raise RuntimeError(
                f"backward() neither returned {len(self.PARAM_NAMES)} gradients "
                f"({', '.join('d' + n for n in self.PARAM_NAMES)}) nor set self.d{missing[0]}"
            )
        return {name: np.asarray(g) for name, g in grads.items()}

    def _float64_twin(self) -> RecurrentNetwork:
        """A shallow copy of this network with float64 copies of its parameters and the same
        ``backward`` (the class's, or this instance's own method re-bound to the copy).

        Raises
        ------
        ValueError
            If this instance carries a ``backward`` attribute that is not a method bound to
            it (e.g. a lambda closing over the float32 network), which cannot run on a copy.
        """
        twin = copy.copy(self)
        for name in self.PARAM_NAMES:
            setattr(twin, name, getattr(self, name).astype(np.float64))
            setattr(twin, "d" + name, None)
        twin._cache, twin._batch = None, None
        own = self.__dict__.get("backward")
        if own is not None:
            if not (isinstance(own, types.MethodType) and own.__self__ is self):
                raise ValueError(
                    f"grad_check on a {self.dtype} network runs backward() on a float64 copy ({self.dtype} "
                    "cannot resolve the check), but this instance's own backward attribute is not a method bound "
                    "to it and cannot run on the copy; assign the function on the class "
                    "(Network.backward = my_backward) or check a float64 network"
                )
            twin.backward = types.MethodType(own.__func__, twin)
        return twin

    def check_results(self, eps: float = 1e-7, thresh: float = 1e-7, relative: bool = False) -> tuple[list, float | None]:
        """The gradient check of :meth:`grad_check`, without raising on a failed parameter.

        Returns
        -------
        results : list of :class:`frnn_cli.gradcheck.ParamCheck`, one per parameter
        rounding : float or None
            For a network in a dtype other than float64: the largest absolute difference
            between the gradients ``backward()`` gives in that dtype and on the float64 copy
            that was checked (the dtype's rounding of BPTT); None for float64.

        Raises
        ------
        RuntimeError, ValueError
            As :meth:`grad_check`.
        """
        from frnn_cli.gradcheck import check_gradients

        if self._batch is None:
            raise RuntimeError("grad_check() needs a forward() first")
        x, y = self._batch
        grads = self._analytic_gradients()
        rounding = None
        net = self
        if self.dtype != np.float64:  # the same backward on a float64 copy decides
            net = self._float64_twin()
            x, y = x.astype(np.float64), y.astype(np.float64)
            net.forward(x, y)
            own, grads = grads, net._analytic_gradients()
            rounding = max(float(np.max(np.abs(np.asarray(own[n], np.float64) - grads[n]), initial=0.0))
                           for n in self.PARAM_NAMES)
        try:
            results = check_gradients(lambda: net.forward(x, y), net.params, grads, eps, thresh, relative=relative)
        finally:
            net.forward(x, y)  # the perturbed forwards replaced the cache; rebuild it
        return results, rounding

    def grad_check(self, eps: float = 1e-7, thresh: float = 1e-7, relative: bool = False) -> list:
        """Check ``self.backward()`` against central differences on the last forward's batch.

        Calls the ``backward`` method bound to this object -- a function assigned on the class
        or the instance after import included -- then perturbs every entry of every
        parameter by +-eps in turn (always restored) and compares
        (L(theta + eps) - L(theta - eps)) / (2 eps) with it.

        The criterion, as the assignment states it: the check fails when any analytical
        gradient entry is farther than ``thresh`` from its numerical value, i.e. when
        max_j |g_num_j - g_j| > thresh for some parameter (absolute, per entry). With
        ``relative=True`` it bounds instead each parameter's norm-wise relative error
        ||g_num - g||_2 / (||g_num||_2 + ||g||_2). Both errors are reported either way.

        A float32 network is checked on a float64 copy -- the same weights (rounded to
        float32), the same batch and the same ``backward`` -- with a RuntimeWarning that
        says so and gives the float32 gradients' own rounding. float32 cannot take part in
        the check itself: its loss carries about 7 significant digits, so a difference
        quotient at eps = 1e-7 is rounding noise of order 1, and its BPTT gradients differ
        from exact ones by ~1e-6 at T = 10 -- far above thresh = 1e-7 for a correct
        backward. The copy decides whether the backward is right; the float32 run only
        rounds it.

        Parameters
        ----------
        eps : float, default 1e-7
            Central-difference step, > 0.
        thresh : float, default 1e-7
            Largest allowed absolute difference per entry (or relative error per parameter).
        relative : bool, default False

        Returns
        -------
        list of :class:`frnn_cli.gradcheck.ParamCheck`, one per parameter (all passed).

        Raises
        ------
        RuntimeError
            If :meth:`forward` has not been called.
        frnn_cli.gradcheck.GradientCheckError
            On the first parameter that fails; the message names the parameter and entry,
            both values, both errors and the likely cause (eps too small for the dtype, eps
            too large for the curvature, or the backward pass itself).
        ValueError
            If eps or thresh is not a finite number > 0, a gradient has the wrong shape, or
            a float32 network's own instance-level backward cannot run on a float64 copy.
        """
        from frnn_cli.gradcheck import raise_on_failure

        results, rounding = self.check_results(eps, thresh, relative)
        if rounding is not None:
            warnings.warn(
                f"grad_check on a {self.dtype} network: backward() was checked on a float64 copy of the weights "
                f"and the batch ({self.dtype} keeps ~7 digits of the loss, too few for central differences); its "
                f"{self.dtype} gradients differ from the float64 copy's by up to {rounding:.1e} (rounding)",
                RuntimeWarning, stacklevel=2,
            )
        raise_on_failure(results, thresh)
        return results
