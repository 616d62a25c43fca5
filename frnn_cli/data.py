"""The 2-sequence (latch) task: one bit at t = 1, Gaussian noise after it, target at the end.

Source: Bengio, Simard & Frasconi (1994), "Learning long-term dependencies with gradient
descent is difficult", and Hochreiter & Schmidhuber (1997), "Long Short-Term Memory",
Experiment 3a.

Each sequence has T elements of one input (D = 1):

* the class is drawn with probability 0.5 each;
* element t = 1 is +1.0 for class 1 and -1.0 for class 2 (noise-free, so 100 % is reachable);
* elements t = 2..T are Gaussian noise with mean 0 and **variance** 0.2
  (standard deviation sqrt(0.2) ~= 0.447);
* the target, given at the end only, is 1.0 for class 1 and 0.0 for class 2.

NumPy only; every draw comes from an explicit ``np.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: Seed of the reference generator (the assignment's ``generate_data``).
REFERENCE_SEED = 0xDEADBEEF
#: Variance of the noise elements t = 2..T.
NOISE_VARIANCE = 0.2
NOISE_STD = float(np.sqrt(NOISE_VARIANCE))


def _check_T(T: int) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
    return int(T)


def sample_batch(
    rng: np.random.Generator, B: int, T: int, dtype: np.dtype | type = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Draw B independent task sequences of length T.

    Parameters
    ----------
    rng : np.random.Generator
        Source of every random draw (class labels first, then noise).
    B : int
        Number of sequences, >= 1.
    T : int
        Sequence length, >= 1. With T = 1 the sequence is the class element only.
    dtype : numpy dtype, default float64

    Returns
    -------
    x : ndarray, shape (B, T, 1), dtype ``dtype``
        x[:, 0, 0] is +1.0 (class 1) or -1.0 (class 2); x[:, 1:, 0] ~ N(0, 0.2).
    y : ndarray, shape (B, 1), dtype ``dtype``
        1.0 for class 1, 0.0 for class 2.

    Raises
    ------
    ValueError
        If B or T is not an integer >= 1.
    """
    T = _check_T(T)
    if isinstance(B, bool) or not isinstance(B, (int, np.integer)) or B < 1:
        raise ValueError(f"B must be an integer >= 1, got {B!r}")
    cls = rng.random(B) < 0.5  # True -> class 1
    x = np.empty((B, T, 1), dtype=dtype)
    x[:, 0, 0] = np.where(cls, 1.0, -1.0)
    if T > 1:
        x[:, 1:, 0] = rng.normal(0.0, NOISE_STD, size=(B, T - 1))
    y = cls.astype(dtype).reshape(B, 1)
    return x, y


def generate_data(T: int, seed: int = REFERENCE_SEED) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield task sequences one at a time, forever (the reference notebook's API).

    The stream is a pure function of ``seed``: two generators with the same seed yield
    the same sequences. Each sequence is drawn by :func:`sample_batch` with B = 1 from a
    private ``np.random.default_rng(seed)``; no global RNG state is touched.

    Parameters
    ----------
    T : int
        Sequence length, >= 1.
    seed : int, default 0xDEADBEEF
        Seed of the generator's private ``np.random.Generator``.

    Yields
    ------
    x : ndarray, shape (T, 1), float64
    y : ndarray, shape (1,), float64

    Raises
    ------
    ValueError
        If T is not an integer >= 1 (raised on the first ``next``).
    """
    T = _check_T(T)
    rng = np.random.default_rng(seed)
    while True:
        x, y = sample_batch(rng, 1, T)
        yield x[0], y[0]
