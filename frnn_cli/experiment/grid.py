"""Sweep grids: the ``KEY=VALUES`` grammar and the seeds of a sweep's jobs.

Grammar of VALUES (one command-line word ``key=VALUES``, or a value under ``sweep:`` in YAML):

* one value:                ``lr=0.1``
* a list:                   ``lr=0.03,0.1,0.3`` (YAML: ``lr: [0.03, 0.1, 0.3]``)
* an inclusive int range:   ``T=1..20`` is the twenty values 1, 2, ..., 20. Unlike Hydra's
  ``range(1,20)``, the end is included.

Every value is checked against the config schema with :func:`frnn_cli.config.coerce`, so
``T=0..3`` fails because T must be >= 1 and ``lr=1e-5,1e-4`` keeps full float precision.
NumPy only; no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from frnn_cli import config
from frnn_cli.errors import BadInput

#: Most values one range a..b may stand for: a larger one is almost surely a typo, and
#: listing it would take memory before the sweep's own job limit could refuse it.
MAX_VALUES = 100_000


def parse_values(schema: type, key: str, text: Any) -> list[Any]:
    """The list of values one ``key=VALUES`` stands for, each typed by the schema.

    Parameters
    ----------
    schema : dataclass type (e.g. :class:`frnn_cli.config.Config`)
    key : str
    text : str, list or scalar
        Command-line text, or a YAML value (a list or a scalar).

    Returns
    -------
    list, in the order given, without duplicates.

    Raises
    ------
    BadInput
        Unknown key, empty value, a malformed or empty range (``5..1``), a range over
        non-integers (``1.5..3``), or a value the schema rejects (``T=0..3``).
    """
    if isinstance(text, (list, tuple)):
        items = list(text)
    elif isinstance(text, str):
        hint = config.range_hint(key, text)
        if hint:
            raise BadInput(hint)
        if not text.strip():
            raise BadInput(f"{key}= has no value; expected a value, a list a,b,c or a range a..b")
        if ".." in text:
            lo, hi = text.split("..", 1)
            a, b = _int_range(key, lo.strip(), hi.strip())
            # Checking both ends checks every value in between (bounds are all min/max).
            first = config.coerce(schema, key, a)
            config.coerce(schema, key, b)
            return [float(v) for v in range(a, b + 1)] if isinstance(first, float) else list(range(a, b + 1))
        else:
            items = [t.strip() for t in text.split(",")]
            if any(t == "" for t in items):
                raise BadInput(f"{key}={text}: empty item in the list; expected a,b,c")
    else:
        items = [text]
    if not items:
        raise BadInput(f"{key}: expected at least one value")
    # dict.fromkeys keeps the first occurrence of each value, in order.
    return list(dict.fromkeys(config.coerce(schema, key, item) for item in items))


def _int_range(key: str, lo: str, hi: str) -> tuple[int, int]:
    try:
        a, b = int(lo), int(hi)
    except ValueError:
        raise BadInput(
            f"{key}={lo}..{hi}: a range a..b (inclusive) needs two integers; for other values give a list a,b,c"
        ) from None
    if a > b:
        raise BadInput(f"{key}={lo}..{hi}: the range is empty; expected a..b with a <= b, e.g. {key}={b}..{a}")
    if b - a + 1 > MAX_VALUES:
        raise BadInput(f"{key}={lo}..{hi}: {b - a + 1:,} values; a range may hold at most {MAX_VALUES:,}")
    return a, b


def parse_grid(schema: type, items: Sequence[str] | Mapping[str, Any]) -> dict[str, list[Any]]:
    """Parse ``key=VALUES`` words (or a YAML ``sweep:`` mapping) into key -> list of values.

    Raises
    ------
    BadInput
        As :func:`parse_values`, or a word without ``=``, or a key given twice.
    """
    if isinstance(items, Mapping):
        raw = {str(k): v for k, v in items.items()}
    else:
        raw = config.parse_overrides(items)
    return {key: parse_values(schema, key, text) for key, text in raw.items()}


def expand(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, last key varying fastest.

    Returns
    -------
    list of dicts key -> value; ``[{}]`` for an empty grid.
    """
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def job_seed(base_seed: int, replicate: int) -> int:
    """Seed of the ``replicate``-th training run of every setting, from ``SeedSequence``.

    The seed depends only on the base seed and the replicate index, not on T, the other
    swept values, the job's position in the queue or the number of workers: replicate r
    of every setting starts from the same seed (common random numbers, which makes the
    learning-rate comparison at each T less noisy).

    Returns
    -------
    int in [0, 2**32).
    """
    ss = np.random.SeedSequence(entropy=base_seed, spawn_key=(replicate,))
    return int(ss.generate_state(1, dtype=np.uint32)[0])
