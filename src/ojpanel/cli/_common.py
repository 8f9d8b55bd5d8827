"""Helpers shared by the CLI commands: error reporting and safe output files."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console

from ojpanel.errors import OJPanelError

__all__ = ["console", "err_console", "fail", "atomic_output", "parse_years", "parse_list", "handle_errors"]

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` as an error on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Turn ojpanel's own errors (and missing files) into a clean message and exit code 2."""
    try:
        yield
    except (OJPanelError, FileNotFoundError) as exc:
        fail(str(exc))


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only on success.

    On any error the temporary file is removed, so a failed command leaves no output behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def parse_years(text: str | None) -> list[int] | None:
    """Parse ``2016-2020`` or ``2016,2018`` into a list of years (None stays None)."""
    from ojpanel.errors import ParameterError

    if text is None or not str(text).strip():
        return None
    years: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            bounds = [int(x) for x in part.split("-", 1)] if part else []
        except ValueError as exc:
            raise ParameterError(
                f"cannot read years from '{text}': use a range like 2016-2020 or a list like 2016,2018"
            ) from exc
        if len(bounds) == 2:
            a, b = bounds
            if b < a:
                raise ParameterError(f"year range '{part}' runs backwards; write it as {b}-{a}")
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
