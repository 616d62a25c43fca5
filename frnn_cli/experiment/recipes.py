"""Recipes: a remedy for the vanishing gradient as a named change to the reference setting.

A recipe has a one-line ``description``, a ``source``, the config keys it ``set``s for every
job, and the grid it ``tune``s at every T (a learning-rate range suited to its optimizer).
The built-in ones live in ``recipes.yaml`` next to this module (``configs/recipes.yaml``
links to it); a user's file has the same format and may add recipes or replace built-in
ones by name. Every key and value is checked against the config schema when loaded, so a
typo in a recipe is one line and exit 2, before anything runs. No I/O but reading YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frnn_cli import config
from frnn_cli.config import Config
from frnn_cli.errors import BadInput
from frnn_cli.experiment import grid

#: The built-in recipes (package data; configs/recipes.yaml is a link to this file).
BUILTIN = Path(__file__).with_name("recipes.yaml")
_FIELDS = ("description", "source", "set", "tune")


@dataclass(frozen=True)
class Recipe:
    """One row of ``frnn compare``.

    Attributes
    ----------
    name : str
    description : str
    source : str
        The paper (or other origin) of the remedy.
    set : dict
        Config keys fixed for every job, already typed (e.g. {"optimizer": "adam"}).
    tune : dict key -> list
        The grid tuned at every T, already typed (e.g. {"lr": [0.001, 0.003]}).
    """

    name: str
    description: str
    source: str
    set: dict[str, Any] = field(default_factory=dict)
    tune: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data in the file format (for ``compare.yaml``)."""
        return {"description": self.description, "source": self.source, "set": dict(self.set),
                "tune": {k: list(v) for k, v in self.tune.items()}}


def recipe_from_dict(name: str, data: Any, where: str) -> Recipe:
    """Check and type one recipe mapping.

    Raises
    ------
    BadInput
        If the entry is not a mapping, has unknown fields, sets or tunes an unknown key or
        a bad value, tunes T (the axis of every comparison), or tunes a key its setting does
        not use (e.g. lr with optimizer=guess: :func:`frnn_cli.experiment.plan.check_no_idle_lists`).
    """
    if not isinstance(data, dict):
        raise BadInput(f"{where}: recipe {name!r} must be a mapping with {', '.join(_FIELDS)}")
    unknown = [k for k in data if k not in _FIELDS]
    if unknown:
        raise BadInput(f"{where}: recipe {name!r} has unknown field {unknown[0]!r}; expected {', '.join(_FIELDS)}")
    sets, tune = data.get("set") or {}, data.get("tune") or {}
    if not isinstance(sets, dict) or not isinstance(tune, dict):
        raise BadInput(f"{where}: recipe {name!r}: set and tune must be mappings of keys to values")
    if "T" in sets or "T" in tune:
        raise BadInput(f"{where}: recipe {name!r} sets T; T is the axis of the comparison (give T=... to frnn compare)")
    try:
        typed = {str(k): config.coerce(Config, str(k), v) for k, v in sets.items()}
        grid_ = grid.parse_grid(Config, tune)
        from frnn_cli.experiment.plan import check_no_idle_lists  # plan imports nothing of this module

        check_no_idle_lists(config.build(Config, typed), grid_)
    except BadInput as exc:
        raise BadInput(f"{where}: recipe {name!r}: {exc}") from None
    return Recipe(name=str(name), description=str(data.get("description") or ""), source=str(data.get("source") or ""),
                  set=typed, tune=grid_)


def load_recipes(path: str | Path) -> dict[str, Recipe]:
    """Every recipe of a YAML file, in file order.

    Raises
    ------
    BadInput
        If the file is missing, is not valid YAML, or a recipe is invalid (see
        :func:`recipe_from_dict`).
    """
    data = config.load_yaml(path)
    return {str(name): recipe_from_dict(str(name), entry, str(path)) for name, entry in data.items()}


def select(names: list[str] | None, extra_file: str | Path | None = None) -> list[Recipe]:
    """The recipes to compare: the built-in ones updated by ``extra_file``, then the ``names`` asked for.

    Parameters
    ----------
    names : list of str or None
        Recipe names in the order wanted; None for every recipe (built-in first, then the
        file's new ones).
    extra_file : path, optional
        A user's recipes file; its recipes replace built-in ones of the same name.

    Raises
    ------
    BadInput
        An unknown name (with the known ones), a name given twice, or a bad file.
    """
    known = load_recipes(BUILTIN)
    if extra_file is not None:
        known.update(load_recipes(extra_file))
    if names is None:
        return list(known.values())
    seen: set[str] = set()
    out = []
    for name in names:
        if name not in known:
            raise BadInput(f"--recipes: unknown recipe {name!r}; known recipes: {', '.join(known)}")
        if name in seen:
            raise BadInput(f"--recipes: {name!r} is given twice")
        seen.add(name)
        out.append(known[name])
    if not out:
        raise BadInput("--recipes: expected at least one recipe name")
    return out
