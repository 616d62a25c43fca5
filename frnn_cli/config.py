"""Typed experiment configuration: schema, strict YAML loading, ``key=value`` overrides.

One flat dataclass, :class:`Config`, is the schema for ``frnn train`` and the jobs of
``frnn sweep``; other commands (``gradcheck``) declare their own small dataclass and reuse
the same loader. Every value passes through :func:`coerce`, so a YAML file and a
command-line override obey the same rules.

YAML is read with the YAML 1.2 core schema instead of PyYAML's YAML 1.1 defaults, because
YAML 1.1 has traps that silently change an experiment:

* ``1e-3`` is a *string* in YAML 1.1 (it wants ``1.0e-3``); here it is the float 0.001;
* ``yes/no/on/off`` are booleans in YAML 1.1; here they stay strings, and a non-boolean key
  given one is an error;
* ``1:20`` is the base-60 integer 80 in YAML 1.1; here it is the string "1:20", an error
  for an integer key;
* a duplicate key silently keeps the last value in PyYAML; here it is an error naming the
  key and its line.

Only plain scalars and mappings are built (``yaml.SafeLoader`` underneath: no Python
objects). Errors are :class:`frnn_cli.errors.BadInput` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from frnn_cli.errors import BadInput, Note
from frnn_cli.model import INITS
from frnn_cli.networks import MODELS
from frnn_cli.optim import OPTIMIZERS


#: Values of the ``dtype`` key: the floating-point types frnn computes in.
DTYPES = ("float64", "float32")


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core-schema scalars and an error on duplicate keys."""


# Replace the YAML 1.1 implicit resolvers with the YAML 1.2 core schema.
_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    return int(text, 0) if text.startswith("0x") else int(text)


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = loader.construct_scalar(node).lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise BadInput(f"key at line {line} is a {type(key).__name__}; expected a plain name such as lr")
        if key in seen:
            raise BadInput(f"duplicate key {key!r} at line {line} (first set at line {seen[key]})")
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


_COLON_RANGE = re.compile(r"^\s*(-?\d+)\s*:\s*(-?\d+)\s*$")
_PY_RANGE = re.compile(r"^\s*range\s*\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)\s*$")


def range_hint(key: str, text: Any) -> str | None:
    """A one-line pointer to frnn's range syntax for text that looks like another one, else None.

    ``1:20`` (YAML 1.1 reads it as the base-60 number 80; MATLAB and slices as a range) and
    ``range(1,20)`` (Python's and Hydra's range, which exclude the end) both mean a range
    to their writer; frnn writes an inclusive range as ``a..b``.
    """
    if not isinstance(text, str):
        return None
    m = _COLON_RANGE.match(text)
    if m:
        a, b = m.groups()
        return f"{key}: {text!r} is not a range frnn reads; write the inclusive range as {key}={a}..{b} (for frnn sweep)"
    m = _PY_RANGE.match(text)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        return (
            f"{key}: {text!r} is Python's range, which excludes {b}; frnn writes inclusive ranges: "
            f"{key}={a}..{b - 1} (for frnn sweep)"
        )
    return None


def parse_scalar(text: str) -> Any:
    """Read one ``key=value`` value as a YAML 1.2 scalar: "1e-3" -> 0.001, "on" -> "on".

    Raises
    ------
    BadInput
        If the text is not a single scalar.
    """
    try:
        value = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text
    if isinstance(value, (dict, list)):
        return text
    return value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping from a file with the rules in the module docstring.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict (empty for an empty file)

    Raises
    ------
    BadInput
        If the file is missing or unreadable, is not valid YAML, has a duplicate key, or
        its top level is not a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"config file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read config file {str(path)!r}: {exc}") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInput(f"{path}: not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a mapping of keys to values, got a {type(data).__name__}")
    return data


def note_empty(path: str | Path) -> None:
    """Say (as a :class:`frnn_cli.errors.Note`) that a config file sets no keys.

    An empty file, or one with comments only, is valid YAML for "no settings", but a user
    who passes it almost surely meant something else; the defaults (for ``frnn sweep``, the
    whole 300-job experiment) should not start unnoticed.
    """
    import warnings

    warnings.warn(f"{path} sets no keys; using the defaults", Note, stacklevel=3)


# ---------------------------------------------------------------------------------------
# The schema


@dataclass
class Config:
    """Settings of one training run (the reference setting by default).

    Every field is a flat key in YAML and on the command line (``hidden=64``).
    ``choices`` in a field's metadata lists the allowed strings; ``min`` the smallest
    allowed number; ``gt`` a number the value must exceed; ``lt`` one it must stay below.
    """

    # Sequence length T of the task (time steps per sequence). The reference setting learns
    # T = 2 within ~100 steps; T >= 4 stays at chance with plain SGD (the vanishing gradient).
    T: int = field(default=2, metadata={"min": 1})
    # The network: rnn (the fully recurrent tanh network of the assignment) or lstm (an LSTM with
    # a forget gate: Hochreiter & Schmidhuber 1997, Gers et al. 2000; frnn_cli/lstm.py).
    model: str = field(default="rnn", metadata={"choices": MODELS})
    # Hidden size I (number of recurrent tanh units; for the LSTM, memory cells).
    hidden: int = field(default=32, metadata={"min": 1})
    # Learning rate eta of the optimizer (step size; for sgd: theta <- theta - eta * dL/dtheta).
    lr: float = field(default=1.0, metadata={"gt": 0})
    # Number of parameter updates (gradient steps), unless early stopping ends the run sooner.
    steps: int = field(default=2000, metadata={"min": 1})
    # Sequences per update (B); each step draws a fresh batch.
    batch_size: int = field(default=32, metadata={"min": 1})
    # Master seed: initial weights, training batches, validation and test sets derive from it
    # (np.random.SeedSequence(seed).spawn), as four disjoint streams.
    seed: int = field(default=0, metadata={"min": 0})
    # Floating-point type of every array of the run (weights, data, activations, gradients,
    # optimizer state): float64 (default) or float32, about 2x faster where float64 tanh has
    # no vector code (AVX2 machines; benchmarks/README.md). frnn gradcheck ignores it and
    # stays in float64, which central differences need.
    dtype: str = field(default="float64", metadata={"choices": DTYPES})
    # Initialisation: uniform (reference), glorot, orthogonal.
    init: str = field(default="uniform", metadata={"choices": INITS})
    # Half-width of the uniform initialisation interval (reference: 0.01); ignored by glorot/orthogonal.
    init_scale: float = field(default=0.01, metadata={"gt": 0})
    # LSTM only: initial bias of the forget gate (Gers et al. 2000 recommend a positive one,
    # so that the cells remember from the start).
    forget_bias: float = 1.0
    # Optimizer: sgd (plain gradient descent, the reference), momentum, adam, or guess: no
    # gradient at all, random weight guessing (Schmidhuber, Hochreiter & Bengio 2001) -- every
    # trial draws all weights afresh from init/init_scale and the first one that classifies all
    # screen_n screening sequences wins; steps then bounds the number of trials.
    optimizer: str = field(default="sgd", metadata={"choices": (*OPTIMIZERS, "guess")})
    # optimizer=guess: screening sequences a trial must classify without error (the LSTM
    # paper's ST1 uses 256).
    screen_n: int = field(default=256, metadata={"min": 1})
    # Momentum coefficient mu for optimizer=momentum (v <- mu v - lr g; theta <- theta + v).
    momentum: float = field(default=0.9, metadata={"min": 0, "lt": 1})
    # Adam: decay rate of the first-moment estimate (Kingma & Ba 2015).
    adam_beta1: float = field(default=0.9, metadata={"min": 0, "lt": 1})
    # Adam: decay rate of the second-moment estimate.
    adam_beta2: float = field(default=0.999, metadata={"min": 0, "lt": 1})
    # Adam: constant added to sqrt(v_hat) in the denominator.
    adam_eps: float = field(default=1e-8, metadata={"gt": 0})
    # Clip the global gradient norm ||(dW, dR, dV)||_2 to this value (Pascanu et al. 2013); null = off.
    clip: float | None = field(default=None, metadata={"gt": 0})
    # Evaluate on the validation set every this many steps (and at step 0 and the last step).
    # One evaluation (validation pass + Jacobian norms) costs about 30 training steps at T = 20.
    eval_every: int = field(default=25, metadata={"min": 1})
    # Validation sequences (fixed for the whole run; pick the best checkpoint).
    n_val: int = field(default=500, metadata={"min": 1})
    # Test sequences, drawn fresh after training, for the verdict against chance.
    n_test: int = field(default=2000, metadata={"min": 1})
    # Early stopping: stop after this many evaluations without a new best checkpoint; 0 = off.
    patience: int = field(default=0, metadata={"min": 0})
    # Early stopping: stop once validation accuracy is 1.0 and validation loss (nats) is below this; null = off.
    stop_loss: float | None = field(default=0.01, metadata={"gt": 0})
    # A training batch loss above this (nats per sequence; chance is ln 2 = 0.69), or any NaN/inf
    # in the loss or gradient, stops the run with status diverged.
    diverge_loss: float = field(default=1000.0, metadata={"gt": 0})
    # Significance level of the one-sided binomial test of test accuracy against chance (0.5).
    alpha: float = field(default=0.01, metadata={"gt": 0, "lt": 1})
    # Parameters kept at their initial values, joined by "+" (e.g. W+R: only the read-out V
    # learns, an echo-state network / reservoir, Jaeger 2001); none = train everything.
    freeze: str = field(default="none", metadata={"subset_of": ("W", "R", "b", "V")})


def describe_keys(schema: type) -> str:
    """Every key of a schema with its default, for ``--help``: "T=2, hidden=32, init=uniform (uniform/glorot/orthogonal), ..."."""
    parts = []
    for f in fields(schema):
        default = "null" if f.default is None else f.default
        choices = f.metadata.get("choices")
        parts.append(f"{f.name}={default}" + (f" ({'/'.join(choices)})" if choices else ""))
    return ", ".join(parts)


def field_names(schema: type) -> list[str]:
    """Names of a dataclass schema's fields, in declaration order."""
    return [f.name for f in fields(schema)]


def _field(schema: type, key: str) -> dataclasses.Field:
    for f in fields(schema):
        if f.name == key:
            return f
    names = field_names(schema)
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise BadInput(f"unknown key {key!r}{hint}; known keys: {', '.join(names)}")


def _field_type(schema: type, f: dataclasses.Field) -> tuple[type, bool]:
    """(base type, optional?) of a field, resolving string annotations."""
    hints = typing.get_type_hints(schema)
    tp = hints[f.name]
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return tp, False


_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def coerce(schema: type, key: str, value: Any) -> Any:
    """Check one value against the schema's field ``key`` and return it with the field's type.

    Strings from the command line are read as YAML 1.2 scalars first ("1e-3" -> 0.001).
    Integers are accepted for float fields (converted); floats with an integral value are
    *not* accepted for integer fields; booleans only for boolean fields.

    Raises
    ------
    BadInput
        Unknown key (with a suggestion), wrong type, a value outside the allowed range or
        choices, or a list/range (``0.1,0.3``, ``1..20``) which only ``frnn sweep`` takes.
    """
    f = _field(schema, key)
    tp, optional = _field_type(schema, f)
    raw = value
    if "subset_of" in f.metadata:
        return _name_set(key, value, f.metadata["subset_of"])
    hint = range_hint(key, value) if tp in (int, float) else None
    if hint:
        raise BadInput(hint)
    if isinstance(value, (list, tuple, dict)):
        raise BadInput(f"{key}: got a {type(value).__name__} {value!r}; one run takes one value (use frnn sweep for a grid)")
    if isinstance(value, str):
        if tp is not str and ("," in value or ".." in value):
            raise BadInput(f"{key}={value} is a list or range of values; one run takes one value (use frnn sweep for a grid)")
        value = parse_scalar(value)
    if value is None:
        if optional:
            return None
        raise BadInput(f"{key}: expected {_TYPE_WORDS.get(tp, tp.__name__)}, got an empty value")
    if isinstance(value, str) and optional and value.lower() in ("none", "off"):
        return None
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, (int, float)) and not isinstance(value, bool))
        or (tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool))
    )
    if not ok:
        raise BadInput(f"{key}: expected {_TYPE_WORDS.get(tp, tp.__name__)}, got {raw!r}")
    value = tp(value)
    meta = f.metadata
    if tp is float and not (value == value and abs(value) != float("inf")):
        raise BadInput(f"{key}: expected a finite number, got {raw!r}")
    if "choices" in meta and value not in meta["choices"]:
        raise BadInput(f"{key}: expected one of {', '.join(meta['choices'])}, got {raw!r}")
    if "min" in meta and value < meta["min"]:
        raise BadInput(f"{key}: expected a value >= {meta['min']}, got {raw!r}")
    if "gt" in meta and not value > meta["gt"]:
        raise BadInput(f"{key}: expected a value > {meta['gt']}, got {raw!r}")
    if "lt" in meta and not value < meta["lt"]:
        raise BadInput(f"{key}: expected a value < {meta['lt']}, got {raw!r}")
    return value


def _name_set(key: str, value: Any, names: tuple[str, ...]) -> str:
    """A set of parameter names as its canonical text: "W+R", or "none" for the empty set.

    Accepts a YAML list (``[W, R]``), text joined by "+" (``W+R``; the comma belongs to the
    sweep grammar, where ``freeze=none,W+R`` sweeps two values), or none/empty.

    Raises
    ------
    BadInput
        If a name is not one of ``names``.
    """
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    elif isinstance(value, str):
        if "," in value:
            raise BadInput(f"{key}={value}: join names with + (e.g. {key}=W+R); a comma makes a list for frnn sweep")
        items = [t.strip() for t in value.split("+")]
    else:
        raise BadInput(f"{key}: expected names joined by + (e.g. W+R) or none, got {value!r}")
    items = [t for t in items if t and t.lower() != "none"]
    bad = [t for t in items if t not in names]
    if bad:
        raise BadInput(f"{key}: unknown parameter {bad[0]!r}; expected names from {', '.join(names)} joined by +, or none")
    return "+".join(n for n in names if n in items) or "none"


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Split command-line ``key=value`` words into a dict of raw strings (not yet typed).

    Raises
    ------
    BadInput
        A word without ``=`` or with an empty key, or the same key twice.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadInput(f"expected key=value, got {item!r}")
        if key in out:
            raise BadInput(f"key {key!r} given twice on the command line")
        out[key] = value
    return out


def build(schema: type, values: dict[str, Any]) -> Any:
    """An instance of ``schema`` from defaults updated with ``values`` (each coerced).

    Raises
    ------
    BadInput
        As :func:`coerce`.
    """
    return schema(**{k: coerce(schema, k, v) for k, v in values.items()})


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    schema: type = Config,
) -> Any:
    """Resolve a config: built-in defaults, then the YAML file, then ``key=value`` overrides.

    Parameters
    ----------
    path : str, Path or None
        YAML file that may set any subset of the schema's keys; None for defaults only.
    overrides : list of "key=value" strings
        Command-line overrides; they win over the file.
    schema : dataclass type, default :class:`Config`

    Returns
    -------
    An instance of ``schema``.

    Raises
    ------
    BadInput
        Missing or invalid file, duplicate or unknown key, wrong type or range.
    """
    values: dict[str, Any] = {}
    if path is not None:
        data = load_yaml(path)
        if not data:
            note_empty(path)
        for key, value in data.items():
            try:
                values[str(key)] = coerce(schema, str(key), value)
            except BadInput as exc:
                raise BadInput(f"{path}: {exc}") from None
    values.update(parse_overrides(overrides))
    return build(schema, values)


#: Keys that only act under one setting: key -> (deciding key, the values under which it acts).
ACTS_ONLY_WITH = {
    "forget_bias": ("model", ("lstm",)),
    "momentum": ("optimizer", ("momentum",)),
    "adam_beta1": ("optimizer", ("adam",)),
    "adam_beta2": ("optimizer", ("adam",)),
    "adam_eps": ("optimizer", ("adam",)),
    "screen_n": ("optimizer", ("guess",)),
    "init_scale": ("init", ("uniform",)),
}
#: Keys that do nothing under one setting: key -> (deciding key, the values under which it is idle).
IDLE_WITH = {
    "lr": ("optimizer", ("guess",)),
    "clip": ("optimizer", ("guess",)),
    "batch_size": ("optimizer", ("guess",)),
    # Guessing reports once per chunk of trials and stops at the first that solves the
    # screening set: no evaluation interval, early stopping or divergence.
    "eval_every": ("optimizer", ("guess",)),
    "patience": ("optimizer", ("guess",)),
    "stop_loss": ("optimizer", ("guess",)),
    "diverge_loss": ("optimizer", ("guess",)),
}


def decider(key: str) -> str | None:
    """The key that decides whether ``key`` is used (model, optimizer or init), or None for a
    key every run uses."""
    rule = ACTS_ONLY_WITH.get(key) or IDLE_WITH.get(key)
    return rule[0] if rule else None


def unused_by(key: str, decider_values: list[Any]) -> list[Any]:
    """The values of ``key``'s deciding key (see :data:`ACTS_ONLY_WITH`, :data:`IDLE_WITH`)
    among ``decider_values`` under which ``key`` does nothing; [] for a key always used."""
    if key in ACTS_ONLY_WITH:
        return [v for v in decider_values if v not in ACTS_ONLY_WITH[key][1]]
    if key in IDLE_WITH:
        return [v for v in decider_values if v in IDLE_WITH[key][1]]
    return []


def given_keys(path: str | Path | None, overrides: list[str] | tuple[str, ...]) -> set[str]:
    """The keys a user set: in the YAML file at ``path`` (a sweep file's ``sweep:`` grid
    included; its ``seeds`` and ``axis`` are no config keys) and in ``key=value`` words.

    Raises
    ------
    BadInput
        As :func:`load_yaml` and :func:`parse_overrides`.
    """
    keys = set(parse_overrides(overrides))
    if path is not None:
        data = load_yaml(path)
        keys |= {str(k) for k in data if k not in ("sweep", "seeds", "axis")}
        keys |= {str(k) for k in (data.get("sweep") or {})}
    return keys


def ignored_keys(given: Any, base: Any, grid_: dict[str, list[Any]] | None = None) -> list[str]:
    """Notes for keys the user set that no run of theirs uses, e.g. ``forget_bias`` with model=rnn.

    Parameters
    ----------
    given : iterable of str
        The keys the user set (:func:`given_keys`).
    base : Config
        The runs' settings (a train run's config, a sweep's base).
    grid_ : dict key -> list of values, optional
        A sweep's grid: a deciding key (model, optimizer, init) listed there takes each of
        its values in some run.

    Returns
    -------
    list of str, one line per ignored key ("forget_bias is ignored: it acts only with
    model=lstm, and model=rnn here").
    """
    notes = []
    for key in sorted(set(given)):
        d = decider(key)
        used = list((grid_ or {}).get(d, [getattr(base, d)])) if d else []
        if not used or unused_by(key, used) != used:  # some run uses it
            continue
        here = f"{decider(key)}={','.join(map(str, used))}"
        if key in ACTS_ONLY_WITH:
            notes.append(f"{key} is ignored: it acts only with {decider(key)}={'/'.join(ACTS_ONLY_WITH[key][1])}, "
                         f"and {here} here")
        else:
            notes.append(f"{key} is ignored: {here} does not use it")
    return notes


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as a plain dict of Python scalars (for ``yaml.safe_dump`` and JSON)."""
    return dataclasses.asdict(cfg)


def dump_yaml(cfg: Any) -> str:
    """The config as YAML text that :func:`load_config` reads back to an equal config.

    Floats are written by ``yaml.safe_dump`` in a form (e.g. ``0.001``, ``1.0e-05``) that
    both YAML 1.1 and 1.2 read as floats.
    """
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=False)
