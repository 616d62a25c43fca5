"""Will it fit? Memory estimates checked before a command allocates anything or makes a folder.

``frnn train T=100000000`` or ``hidden=1000000`` would otherwise allocate for seconds, fail
with MemoryError and leave a failed run folder behind. Each estimate here counts the large
arrays of a command from its settings alone (plain arithmetic: no NumPy, nothing allocated),
and :func:`check_fits` refuses, with one line naming the keys that dominate, a plan that
exceeds the memory the machine has available now (``MemAvailable`` in /proc/meminfo).

The estimates are upper-bound-minded but rough (within a factor of about 2 of the peak
resident size): they decide "fits or not", not the exact usage.
"""

from __future__ import annotations

import os

from frnn_cli.errors import BadInput

#: Sequences per forward pass when evaluating (frnn_cli.train.EVAL_CHUNK).
_EVAL_CHUNK = 512
#: Validation sequences whose Jacobian norms each evaluation measures (frnn_cli.train).
_JACOBIAN_SEQUENCES = 32
#: Upper bound on the floats of one chunk of pre-sampled training batches (frnn_cli.train).
_SAMPLE_CHUNK_FLOATS = 2**16
#: Share of the available memory a plan may take: the estimates are rough, and the machine
#: runs other things.
SPARE = 0.8
#: Bytes of memory NumPy, SciPy and the interpreter take before any array (measured ~100 MB).
BASE_BYTES = 150 * 2**20


def available_bytes() -> int | None:
    """Memory available to new allocations now, in bytes, or None when it cannot be read.

    Linux: ``MemAvailable`` from /proc/meminfo (free memory plus what the kernel can reclaim);
    elsewhere ``os.sysconf`` free pages.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def human(n: float) -> str:
    """Bytes as a short text: "512 MB", "2.4 TB"."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def train_bytes(T: int, hidden: int, batch_size: int, n_val: int, n_test: int, itemsize: int = 8,
                gates: int = 1, n_screen: int = 0) -> dict[str, int]:
    """The large arrays of one training run, in bytes, by the keys that size them.

    Parameters
    ----------
    T, hidden, batch_size, n_val, n_test : int
        The run's settings (sequence length T, hidden size I, batch size B, validation and
        test set sizes). D = K = 1 (the task).
    itemsize : int, default 8
        Bytes per float (8 for float64, 4 for float32).
    gates : int, default 1
        Pre-activations per hidden unit: 1 for the RNN, 4 for an LSTM (i, f, o, g).
    n_screen : int, default 0
        Random guessing's screening sequences (``screen_n``), held like the validation set.

    Returns
    -------
    dict description -> bytes, e.g. {"hidden (weights, gradients, optimizer state)": ...}.
    """
    I, B, G = hidden, batch_size, gates
    weights = 8 * G * I * (I + 2) + 8 * I  # params, grads, best copy, optimizer moments (Adam: 2)
    sample = max(B * T, min(16 * B * T, _SAMPLE_CHUNK_FLOATS)) * 2  # pre-sampled batches, x and y
    # forward states (T+1, B, I) per gate, the transposed input, and the error deltas of BPTT
    batch = (T + 1) * B * I * (G + 2 * G) + T * B * 2 + sample
    eval_chunk = (T + 1) * min(_EVAL_CHUNK, max(n_val, n_test)) * I * G + T * _EVAL_CHUNK
    jacobian_states = _JACOBIAN_SEQUENCES * (T + 1) * I * G
    jacobians = _JACOBIAN_SEQUENCES * 3 * I * I
    # A set of n sequences is drawn at once: the set itself, its float64 noise before the
    # cast to the run's dtype, and the targets (measured: 3.1 GB at n = 1e7, T = 20).
    def sequences(n: int) -> int:
        return n * T * (itemsize + 8) + n * itemsize

    return {
        "hidden x hidden (weights, gradients, optimizer state, Jacobians)": (weights + jacobians) * itemsize,
        "T x batch_size x hidden (one batch's states for BPTT)": batch * itemsize,
        "n_val x T (the validation set)": sequences(n_val),
        "n_test x T (the test set)": sequences(n_test),
        "screen_n x T (the screening set of random guessing)": sequences(n_screen),
        "T x hidden (an evaluation's states)": (eval_chunk + jacobian_states) * itemsize,
    }


def vanishing_bytes(T: int, n: int, hidden: int) -> dict[str, int]:
    """The large arrays of ``frnn vanishing`` (float64), in bytes, by the keys that size them.

    The states a(0..T) and error vectors of n sequences, the inputs, and one block of
    Jacobians (at most 2^23 entries: frnn_cli.vanishing._MAX_JACOBIAN_ENTRIES).
    """
    I = hidden
    return {
        "n x T x hidden (states and errors of the n sequences)": 8 * 3 * (T + 1) * n * I,
        "n x T (the sequences)": 8 * 2 * n * T,
        "hidden x hidden (the Jacobians)": 8 * 3 * max(min(n * I * I, 2**23), I * I),
    }


#: Gates per hidden unit, by model: the RNN's tanh, the LSTM's i, f, o, g.
_GATES = {"rnn": 1, "lstm": 4}
#: Most forward steps a gradient check may take (2 per checked entry, T each): about 10
#: minutes on a 2-core EPYC at small hidden sizes (~5 us per step in the Python loop).
GRADCHECK_MAX_STEPS = 10**8
#: Most multiply-adds a gradient check may take: again about 10 minutes (~2e-10 s each there).
GRADCHECK_MAX_MACS = 3 * 10**12


def gradcheck_cost(model: str, T: int, hidden: int, batch_size: int, outputs: int) -> dict[str, int]:
    """What ``frnn gradcheck`` costs: checked entries, forward steps, multiply-adds, bytes.

    Every parameter entry takes two forward passes of T steps (central differences), each
    step B x I x (I + 1) x gates multiply-adds; the forward caches hold about 4 float64
    arrays of B x T x I x gates.

    Returns
    -------
    dict with "entries", "steps", "macs" and "bytes" (ints).
    """
    g = _GATES.get(model, 1)
    I, B = hidden, batch_size
    entries = g * I * (1 + I + (1 if g > 1 else 0)) + outputs * I  # W, R (and the LSTM's b), V
    steps = 2 * entries * T
    return {"entries": entries, "steps": steps, "macs": steps * B * I * (I + 1) * g,
            "bytes": 8 * 4 * B * (T + 1) * I * g + 8 * entries * 3}


def check_gradcheck(model: str, T: int, hidden: int, batch_size: int, outputs: int) -> None:
    """Refuse a gradient check too large to finish in minutes or to fit in memory.

    A gradient check is for a small network: its time grows as hidden^2 entries x T steps.

    Raises
    ------
    BadInput
        Naming the estimate and the keys to lower.
    """
    c = gradcheck_cost(model, T, hidden, batch_size, outputs)
    what = f"a gradient check with T={T}, hidden={hidden}, batch_size={batch_size}"
    if c["steps"] > GRADCHECK_MAX_STEPS or c["macs"] > GRADCHECK_MAX_MACS:
        raise BadInput(f"{what} is too large: {c['entries']:,} entries x 2 passes of T steps = {c['steps']:.1e} steps "
                       f"and {c['macs']:.1e} multiply-adds (limits {GRADCHECK_MAX_STEPS:.0e} and "
                       f"{GRADCHECK_MAX_MACS:.0e}, about 10 minutes); lower T, hidden or batch_size")
    check_fits({"batch_size x T x hidden (the forward caches)": c["bytes"]}, what)


def sequences_bytes(T: int, n: int) -> dict[str, int]:
    """Bytes of n task sequences of length T as ``frnn generate`` holds them (list and stack)."""
    return {"n x T (the sequences)": 8 * 3 * n * T}


def check_fits(parts: dict[str, int], what: str, copies: int = 1, available: int | None = None) -> int:
    """Refuse a plan whose estimated memory exceeds what the machine has available.

    Parameters
    ----------
    parts : dict description -> bytes
        One process's large arrays (e.g. from :func:`train_bytes`).
    what : str
        The plan in words, for the message ("a run with T=100000000").
    copies : int, default 1
        Processes that hold such arrays at the same time (a sweep's workers).
    available : int, optional
        Bytes available; default :func:`available_bytes`. None (unknown): nothing is refused.

    Returns
    -------
    int, the estimate in bytes (all copies, plus :data:`BASE_BYTES` per process).

    Raises
    ------
    BadInput
        If the estimate exceeds ``available``; the message gives both figures and the keys
        of the largest part.
    """
    total = copies * (sum(parts.values()) + BASE_BYTES)
    if available is None:
        available = available_bytes()
    # The estimates are rough (within about 2x); leave a fifth of the memory to spare.
    if available is not None and total > SPARE * available:
        biggest = max(parts, key=parts.get)
        times = f"{copies} processes x " if copies > 1 else ""
        raise BadInput(
            f"{what} needs about {human(total)} of memory ({times}mostly {biggest}: {human(parts[biggest])}), "
            f"but this machine has {human(available)} available; lower those sizes"
            + (" or --workers" if copies > 1 else "")
        )
    return total
