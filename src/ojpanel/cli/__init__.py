"""The ``ojpanel`` command line.

Each command group lives in its own module with a ``register(app)`` function; heavy libraries are
imported inside the commands so that ``ojpanel --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="ojpanel",
    help="Öppna jämförelser as a municipality × indicator × year panel, and models of what improves it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Modules that add commands; each has ``register(app)``.
_COMMAND_MODULES = ("panel", "fetch", "reproduce", "power", "pipeline", "steering")

for _name in _COMMAND_MODULES:
    importlib.import_module(f"ojpanel.cli.{_name}").register(app)


def main() -> None:
    """Entry point of the ``ojpanel`` console script."""
    app()
