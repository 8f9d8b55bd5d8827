"""Notebook parameters: read each notebook's ``parameters`` cell and check what is injected."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from ojpanel.errors import ParameterError

__all__ = [
    "notebook_parameters",
    "check_parameters",
    "parse_cli_parameter",
    "smoke_settings",
    "check_smoke_conflicts",
]


def notebook_parameters(path: Path | str) -> dict[str, Any]:
    """Names and default values of the notebook's cell tagged ``parameters``.

    Raises
    ------
    ParameterError
        If the notebook has no (or more than one) ``parameters`` cell, or the cell holds anything
        but ``name = literal`` assignments.
    """
    import nbformat  # here, not at the top: importing it takes seconds, and every kernel imports this package

    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"{Path(path).name}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    params: dict[str, Any] = {}
    tree = ast.parse(cells[0].source)
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        else:
            raise ParameterError(f"{Path(path).name}: the parameters cell may only assign literals to names "
                                 f"(line {node.lineno})")
        try:
            params[target] = ast.literal_eval(value) if value is not None else None
        except ValueError as exc:
            raise ParameterError(f"{Path(path).name}: parameter {target} must have a literal default") from exc
    return params


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def check_parameters(name: str, defaults: dict[str, Any], given: dict[str, Any]) -> None:
    """Reject unknown names and wrongly typed values before anything runs.

    Raises
    ------
    ParameterError
        Listing every unknown parameter (with the accepted names) and every type mismatch.
    """
    problems = []
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        problems.append(f"unknown parameter(s) {unknown}; {name} accepts {sorted(defaults)}")
    for k in sorted(set(given) & set(defaults)):
        if not _type_ok(defaults[k], given[k]):
            problems.append(f"parameter {k} must be {type(defaults[k]).__name__} (default {defaults[k]!r}), "
                            f"got {type(given[k]).__name__} {given[k]!r}")
    if problems:
        raise ParameterError(f"{name}: " + "; ".join(problems))


_UNKNOWN = object()


def smoke_settings(path: Path | str) -> dict[str, Any]:
    """Names a notebook's ``if smoke:`` blocks assign, with the literal values (or ``...``).

    The smoke size of a notebook is set in its code (``if smoke: n_draws = 199``), after the
    parameters are injected; this reads those assignments without running anything.
    """
    import nbformat  # here, not at the top: importing it takes seconds, and every kernel imports this package

    nb = nbformat.read(str(path), as_version=4)
    out: dict[str, Any] = {}
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        # IPython magics (``%matplotlib inline``) and shell lines are not Python: blank them out
        # so that the rest of the cell is still read.
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                           for line in cell.source.splitlines())
        try:
            tree = ast.parse(source)
        except SyntaxError:  # a cell we cannot parse sets no smoke size we can read
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "smoke"):
                continue
            for stmt in node.body:
                if isinstance(stmt, ast.Assign):
                    for target in stmt.targets:
                        out.update(_assigned(target, stmt.value))
                elif isinstance(stmt, ast.AnnAssign | ast.AugAssign) and isinstance(stmt.target, ast.Name):
                    out.update(_assigned(stmt.target, stmt.value))
    return out


def _assigned(target: ast.expr, value: ast.expr | None) -> dict[str, Any]:
    if isinstance(target, ast.Name):
        try:
            return {target.id: ast.literal_eval(value) if value is not None else ...}
        except ValueError:
            return {target.id: ...}
    if isinstance(target, ast.Tuple | ast.List):
        values = value.elts if isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts) else None
        out: dict[str, Any] = {}
        for i, t in enumerate(target.elts):
            out.update(_assigned(t, values[i] if values is not None else None))
        return out
    return {}


def check_smoke_conflicts(path: Path | str, given: dict[str, Any]) -> None:
    """Refuse explicit parameters that a smoke run would silently replace.

    A notebook's ``if smoke:`` block runs after the injected parameters, so ``--smoke -p
    n_permutations=7`` would run with the smoke value instead of 7. Such a combination is an error
    that names both ways out.

    Raises
    ------
    ParameterError
        Naming every parameter the smoke block sets, with its smoke value.
    """
    name = Path(path).name
    sets = smoke_settings(path)
    clash = sorted(set(given) & set(sets))
    if clash:
        shown = ", ".join(f"{k} (to {sets[k]!r})" if sets[k] is not ... else k for k in clash)
        raise ParameterError(
            f"{name}: --smoke sets {shown} itself, after the parameters are injected, so "
            f"{', '.join(f'-p {Path(path).stem[:2]}:{k}={given[k]!r}' for k in clash)} would be "
            "ignored; drop --smoke to run with your value(s), or drop the -p"
        )


def parse_cli_parameter(text: str) -> tuple[str, Any]:
    """``name=value`` with a Python literal value (strings may be bare): ``seed=3``, ``area=LSS``."""
    if "=" not in text:
        raise ParameterError(f"parameters look like name=value, got {text!r}")
    k, v = text.split("=", 1)
    try:
        value = ast.literal_eval(v)
    except (ValueError, SyntaxError):
        value = v
    return k.strip(), value
