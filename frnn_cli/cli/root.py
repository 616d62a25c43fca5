"""The Typer application, its error handling and the registration of every command."""

from __future__ import annotations

import sys
import warnings
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from frnn_cli import __version__
from frnn_cli.errors import BadInput, ExperimentFailed, Note

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _show_note(message: Warning | str, category: type[Warning], filename: str, lineno: int,
               file: Any = None, line: str | None = None) -> None:
    """Print a :class:`Note` as one line ``note: ...`` on stderr; other warnings as Python would."""
    if issubclass(category, Note):
        typer.echo(f"note: {message}", err=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    sys.exit(code)


class _LazyCommand(TyperCommand):
    """Stands in for a command whose module is not imported yet (see :data:`LAZY_COMMANDS`)."""


def load_command(name: str) -> Any:
    """Import the module of command ``name`` and build its click command, as ``app.command`` would."""
    import importlib

    module_name, function, _, kwargs = LAZY_COMMANDS[name]
    module = importlib.import_module(module_name)
    # A module may build its help text (train lists every key with its default).
    kwargs = {**kwargs, "help": getattr(module, "HELP", None)} if hasattr(module, "HELP") else kwargs
    one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    one.command(name, cls=FrnnCommand, **kwargs)(getattr(module, function))
    return typer.main.get_command(one)


class FrnnGroup(TyperGroup):
    """Click group that turns every error into one line on stderr and an exit code.

    Runs click in non-standalone mode so that usage errors, :class:`BadInput`,
    :class:`ExperimentFailed` and Ctrl-C reach this method, also under ``CliRunner``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Placeholders carry the name and short help, enough for `frnn --help`, typo
        # suggestions and `--version`; the command's module (and NumPy, SciPy, ... behind
        # it) is imported only when that command runs: `frnn --help` takes ~0.2 s, not ~1 s.
        for name, (_, _, short_help, _) in LAZY_COMMANDS.items():
            self.commands.setdefault(name, _LazyCommand(name, help=short_help))

    def get_params(self, ctx: Any) -> list:
        return _no_flag_metavar(super().get_params(ctx))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, cmd, rest = super().resolve_command(ctx, args)
        if isinstance(cmd, _LazyCommand):
            cmd = self.commands[name] = load_command(name)
        return name, cmd, rest

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", Note)
                warnings.showwarning = _show_note
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # click's usage errors: bad flag, bad option value
            message = " ".join((exc.format_message() or str(exc)).strip().splitlines())
            if not message:  # `frnn` alone: the help was printed, nothing went wrong
                sys.exit(exc.exit_code)
            _fail(message, exc.exit_code or EXIT_USAGE)
        except BadInput as exc:
            _fail(str(exc), EXIT_USAGE)
        except ExperimentFailed as exc:
            _fail(str(exc), EXIT_FAILED)
        except (KeyboardInterrupt, typer.Abort):
            _fail("interrupted", EXIT_INTERRUPTED)
        except MemoryError:
            _fail("out of memory: the sizes asked for (T, n_val, n_test, batch_size, hidden, n) are too large", EXIT_FAILED)
        except OSError as exc:  # a file could not be written mid-run (disk full, permissions)
            _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), EXIT_FAILED)
        # Typer returns the code of typer.Exit (130 for Ctrl-C) in non-standalone mode.
        code = rv if isinstance(rv, int) else EXIT_OK
        if code == EXIT_INTERRUPTED:
            _fail("interrupted", EXIT_INTERRUPTED)
        sys.exit(code)


def _no_flag_metavar(params: list) -> list:
    """Boolean flags (``--dry-run``, ``--help``) show no ``<bool>`` type in --help: a flag takes
    no value, so a type next to it only misleads."""
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
    return params


class FrnnCommand(TyperCommand):
    """A command whose boolean flags show no ``<bool>`` in --help (see :func:`_no_flag_metavar`)."""

    def get_params(self, ctx: Any) -> list:
        return _no_flag_metavar(super().get_params(ctx))


app = typer.Typer(
    cls=FrnnGroup,
    name="frnn",
    help="Train a fully recurrent tanh network with BPTT on the 2-sequence latch task and find "
    "the longest sequence length T it learns better than chance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"frnn {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """frnn: how far can a vanilla RNN carry one bit through noise?"""


# Registration: one line per command module, loaded when the command runs (see FrnnGroup).
# name: (module, function, first paragraph of its docstring for `frnn --help`, app.command kwargs).
# tests/test_cli_core.py checks that each short help equals the command's own docstring.
LAZY_COMMANDS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "generate": ("frnn_cli.cli.cmd_generate", "generate",
                 "Draw n task sequences of length T, preview them and show their statistics.", {"no_args_is_help": False}),
    "gradcheck": ("frnn_cli.cli.cmd_gradcheck", "gradcheck",
                  "Check BPTT gradients of W, R, V against central differences, entry by entry.", {}),
    "train": ("frnn_cli.cli.cmd_train", "train",
              "Train the network once with BPTT and test the best checkpoint against chance.", {}),
    "sweep": ("frnn_cli.cli.cmd_sweep", "sweep_cmd",
              "Train at every sequence length T, tune the learning rate and steps, find the longest T learned "
              "better than chance.", {}),
    "compare": ("frnn_cli.cli.cmd_compare", "compare_cmd",
                "Run every recipe's sweep with one protocol and compare the longest T each learns better than "
                "chance.", {}),
    "vanishing": ("frnn_cli.cli.cmd_vanishing", "vanishing",
                  "Measure how the gradient vanishes through time: ||da(t)/da(1)||_2 against its bound "
                  "||R||_2^(t-1).", {}),
    "export": ("frnn_cli.cli.cmd_export", "export_cmd",
               "Export a run folder into MLflow, to filter, compare and plot runs in its web UI.", {}),
}


def _terminate(signum: int, frame: object) -> None:
    # `kill` (SIGTERM) stops a run the way Ctrl-C does: status "interrupted", files intact.
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point ``frnn``."""
    import signal

    from frnn_cli.cli.streams import survive_closed_pipes

    signal.signal(signal.SIGTERM, _terminate)
    survive_closed_pipes()
    app()
