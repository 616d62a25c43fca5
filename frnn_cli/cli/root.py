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


class FrnnGroup(TyperGroup):
    """Click group that turns every error into one line on stderr and an exit code.

    Runs click in non-standalone mode so that usage errors, :class:`BadInput`,
    :class:`ExperimentFailed` and Ctrl-C reach this method, also under ``CliRunner``.
    """

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


class FrnnCommand(TyperCommand):
    """A command whose boolean flags (``--dry-run``, ``--help``) show no ``<bool>`` type in --help:
    a flag takes no value, so a type next to it only misleads."""

    def get_params(self, ctx: Any) -> list:
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params


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


# Registration: one line per command module.
from frnn_cli.cli import cmd_generate, cmd_gradcheck  # noqa: E402

app.command("generate", cls=FrnnCommand, no_args_is_help=False)(cmd_generate.generate)
app.command("gradcheck", cls=FrnnCommand)(cmd_gradcheck.gradcheck)
from frnn_cli.cli import cmd_train  # noqa: E402
app.command("train", cls=FrnnCommand, help=cmd_train.HELP)(cmd_train.train)
from frnn_cli.cli import cmd_sweep  # noqa: E402
app.command("sweep", cls=FrnnCommand)(cmd_sweep.sweep_cmd)
from frnn_cli.cli import cmd_compare  # noqa: E402
app.command("compare", cls=FrnnCommand)(cmd_compare.compare_cmd)
from frnn_cli.cli import cmd_vanishing  # noqa: E402
app.command("vanishing", cls=FrnnCommand)(cmd_vanishing.vanishing)
from frnn_cli.cli import cmd_export  # noqa: E402
app.command("export", cls=FrnnCommand)(cmd_export.export_cmd)


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
