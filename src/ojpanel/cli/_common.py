"""Helpers shared by the CLI commands: error reporting, help layout and safe output files."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup, TyperOption

from ojpanel.errors import OJPanelError, OJPanelWarning, ParameterError

__all__ = [
    "console",
    "err_console",
    "fail",
    "warn",
    "parse_years",
    "parse_list",
    "handle_errors",
    "Command",
    "Group",
    "reflow",
    "new_app",
    "examples",
    "command_line",
    "check_unit_interval",
    "check_range",
    "check_municipality_coordinate",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
]

console = Console()
err_console = Console(stderr=True)

#: Exit code of bad input or options (what the README promises).
EXIT_USAGE = 2
#: Exit code after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
_DEBUG_ENV = "OJPANEL_DEBUG"


def _flags_as_flags(params: list[Any]) -> list[Any]:
    # Typer prints a value type such as <bool> even for flags that take no value; an empty
    # metavar makes the help show a flag as a flag.
    for p in params:
        if isinstance(p, TyperOption) and p.is_flag and p.metavar is None:
            p.metavar = ""
    return params


_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s")


def reflow(text: str | None) -> str | None:
    """Join the hard-wrapped lines of each paragraph of a docstring into one line.

    Typer's help keeps a docstring's line breaks, so text wrapped at 100 columns in the source
    would be broken again at the terminal's width in the middle of lines. Paragraphs (separated by
    a blank line) stay apart, and list items keep their own lines.
    """
    if not text:
        return text
    paragraphs = []
    for para in re.split(r"\n\s*\n", text.strip()):
        lines: list[str] = []
        for line in para.splitlines():
            if lines and not _LIST_ITEM.match(line):
                lines[-1] = f"{lines[-1]} {line.strip()}"
            else:
                lines.append(line.strip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


class Command(TyperCommand):
    """A Typer command whose help shows flags as flags (no ``<bool>``) and reflowed paragraphs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)

    def get_params(self, ctx: Any) -> list[Any]:  # noqa: D102 - click API
        return _flags_as_flags(super().get_params(ctx))


class Group(TyperGroup):
    """A Typer command group whose help shows flags as flags (no ``<bool>``) and reflowed paragraphs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)

    def get_params(self, ctx: Any) -> list[Any]:  # noqa: D102 - click API
        return _flags_as_flags(super().get_params(ctx))


def new_app(help: str, **kwargs: Any) -> typer.Typer:
    """A command group with ojpanel's help conventions."""
    kwargs.setdefault("no_args_is_help", True)
    return typer.Typer(help=help, cls=Group, **kwargs)


def examples(*lines: str) -> str:
    """Help epilog listing example command lines (each on its own line)."""
    shown = "\n\n".join(f"  {escape(line)}" for line in lines)
    return f"Example{'s' if len(lines) > 1 else ''}:\n\n{shown}"


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """Print ``message`` as an error on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Print ``message`` as a warning on stderr."""
    err_console.print(f"[bold yellow]warning:[/] {escape(str(message))}", highlight=False,
                      soft_wrap=True)


def _show_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    warn(str(message))


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Run a command body so that no Python traceback reaches the user.

    * ojpanel's own errors, missing files and other operating-system errors (permissions, a full
      disk): the message, exit code 2;
    * Ctrl-C: "interrupted", exit code 130;
    * anything else is a bug or an input ojpanel does not check yet: one line naming the
      exception, exit code 1 (``OJPANEL_DEBUG=1`` shows the traceback);
    * ojpanel's warnings are printed as ``warning: …`` lines when they happen.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("always", OJPanelWarning)
        warnings.showwarning = _show_warning
        try:
            yield
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except KeyboardInterrupt:
            fail("interrupted (Ctrl-C); nothing was written", EXIT_INTERRUPTED)
        except (OJPanelError, FileNotFoundError) as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        except Exception as exc:
            if os.environ.get(_DEBUG_ENV, "").strip() not in {"", "0"}:
                raise
            fail(f"unexpected {type(exc).__name__}: {exc}. This is a bug in ojpanel or an input "
                 f"it does not check yet; please report it with the command line "
                 f"({_DEBUG_ENV}=1 shows the traceback).", 1)


def parse_years(text: str | None, flag: str = "--years") -> list[int] | None:
    """Parse ``2016-2020`` or ``2016,2018`` into a list of years (None stays None)."""
    if text is None or not str(text).strip():
        return None
    years: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            bounds = [int(x) for x in part.split("-", 1)] if part else []
        except ValueError as exc:
            raise ParameterError(
                f"cannot read {flag} '{text}': use a range like 2016-2020 or a list like 2016,2018"
            ) from exc
        if len(bounds) == 2:
            a, b = bounds
            if b < a:
                raise ParameterError(f"{flag} range '{part}' runs backwards; write it as {b}-{a}")
            years.extend(range(a, b + 1))
        else:
            years.extend(bounds)
    return sorted(set(years))


def parse_list(text: str | None) -> list[str] | None:
    """Split a comma-separated option into a list (None or empty stays None)."""
    if text is None:
        return None
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    return items or None


def check_unit_interval(value: float, flag: str) -> float:
    """``value`` if it lies strictly between 0 and 1; otherwise an error naming ``flag``."""
    if not 0 < value < 1:
        raise ParameterError(f"{flag} must lie strictly between 0 and 1; got {value:g}")
    return value


def check_range(value: float, flag: str, low: float | None = None, high: float | None = None,
                what: str = "") -> float:
    """``value`` if ``low <= value <= high``; otherwise an error naming ``flag``."""
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (f"between {low:g} and {high:g}" if low is not None and high is not None
                  else f"at least {low:g}" if low is not None else f"at most {high:g}")
        raise ParameterError(f"{flag} must be {bounds}{what}; got {value:g}")
    return value


def check_municipality_coordinate(ds: Any, name: str, flag: str) -> str:
    """``name`` if it is a municipality grouping of the panel ``ds``; else an error naming ``flag``."""
    choices = ["municipality"] + [str(c) for c in ds.coords
                                  if ds[c].dims == ("municipality",) and c != "municipality"]
    if name not in choices:
        raise ParameterError(f"{flag} {name!r} is not a municipality coordinate of the panel; "
                             f"choose one of: {', '.join(choices)}")
    return name


def command_line(ctx: typer.Context, *, drop: Sequence[str] = ()) -> str:
    """The ``ojpanel …`` command line that repeats this invocation (options as given).

    Options left at their default are omitted; ``drop`` names parameters to leave out.
    """
    names = []
    c: Any = ctx
    while c is not None and c.parent is not None:
        names.append(c.info_name)
        c = c.parent
    words = ["ojpanel", *reversed(names)]
    for param in ctx.command.params:
        if param.name in drop or not isinstance(param, TyperOption):
            continue
        value = ctx.params.get(param.name)
        if value is None or value == param.default or value == [] or value == ():
            continue
        if param.is_flag:
            if value and param.opts:
                words.append(param.opts[0])
            elif not value and param.secondary_opts:
                words.append(param.secondary_opts[0])
            continue
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        for v in value if isinstance(value, (list, tuple)) else [value]:
            words += [flag, str(v)]
    return " ".join(shlex.quote(w) for w in words)
