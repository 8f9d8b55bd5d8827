"""The ``ojpanel`` command line.

Each command group lives in its own module with a ``register(app)`` function; heavy libraries are
imported inside the commands so that ``ojpanel --help`` stays fast. Every command's help ends with
an example, flags are shown as flags, and user errors end in a message and exit code 2, never a
traceback (:func:`ojpanel.cli._common.handle_errors`).
"""

from __future__ import annotations

import importlib

import typer

from ojpanel.cli._common import Group, console

__all__ = ["app", "main"]

app = typer.Typer(
    name="ojpanel",
    help="Öppna jämförelser as a municipality × indicator × year panel, and models of what improves it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Group,
)


def _print_version(value: bool) -> None:
    if value:
        from ojpanel.provenance import package_version

        console.print(f"ojpanel {package_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True,
        help="Show the ojpanel version and exit.",
    ),
) -> None:
    """Öppna jämförelser as a municipality × indicator × year panel, and models of what improves it.

    Long work shows a progress bar on a terminal and a line every 10 s otherwise
    (OJPANEL_PROGRESS=off hides it).
    """
    from ojpanel.progress import log_to_stderr

    log_to_stderr()


# Modules that add commands; each has ``register(app)``.
_COMMAND_MODULES = ("panel", "fetch", "reproduce", "power", "pipeline", "steering")

for _name in _COMMAND_MODULES:
    importlib.import_module(f"ojpanel.cli.{_name}").register(app)


def main() -> None:
    """Entry point of the ``ojpanel`` console script."""
    app()
