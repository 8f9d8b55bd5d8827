"""What each notebook reads and writes, declared in its own metadata.

A notebook declares its inputs and outputs in its metadata::

    "metadata": {"ojpanel": {"reads": ["data:kolada_values.csv.gz", "records:01_build_panel"],
                             "writes": ["panel.nc", "figures/*.png"]}}

The declaration lives in the notebook rather than in a separate file because notebooks are found by
glob: a side file naming notebooks would be a hand-kept list that goes stale when one is added or
renamed, whereas the declaration travels with the notebook it describes (into its executed copy,
too) and an edit to it is a small metadata-only diff.

``reads`` entries are ``kind:target``:

``data:<path or glob>``
    files in the embedded data directory (:func:`ojpanel.config.data_dir`);
``file:<path or glob>``
    files relative to the notebook's directory;
``param:<name>``
    the file or directory that parameter names (nothing when its value is empty);
``records:<notebook>``
    another notebook's recorded results;
``output:<notebook>/<path>``
    a file another notebook writes (it must be one of that notebook's declared writes).

``writes`` are paths or globs relative to the notebook's output directory (its ``out_dir``
parameter, ``<pipeline out>/<stem>``). A plain path must exist after a successful run; a glob may
match nothing.

Notebooks are connected only through ``records:`` and ``output:`` reads, so notebooks that read no
other notebook run concurrently. A notebook without a declaration is treated conservatively: it
runs after every earlier notebook and is never taken from the cache.
"""

from __future__ import annotations

import fnmatch
import glob as globlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ojpanel.errors import OJPanelError

__all__ = [
    "READ_KINDS",
    "DeclarationError",
    "Read",
    "Declaration",
    "read_declaration",
    "dependency_graph",
    "with_upstream",
    "check_declared_inputs",
    "input_files",
    "matches_write",
    "resolve_notebook",
    "is_glob",
]

#: The kinds of input a notebook can declare.
READ_KINDS = ("data", "file", "param", "records", "output")
_HOW = ('declare them as metadata["ojpanel"] = {"reads": ["data:kolada_values.csv.gz", ...], '
        '"writes": ["panel.nc", ...]}')


class DeclarationError(OJPanelError, ValueError):
    """A notebook's ``reads``/``writes`` declaration is malformed or inconsistent."""


@dataclass(frozen=True)
class Read:
    """One declared input: ``kind`` (see :data:`READ_KINDS`), ``target`` and the text as written."""

    kind: str
    target: str
    text: str

    @property
    def notebook(self) -> str | None:
        """The notebook read by ``records:``/``output:`` reads (as written: stem or number)."""
        if self.kind == "records":
            return self.target
        if self.kind == "output":
            return self.target.split("/", 1)[0]
        return None


@dataclass(frozen=True)
class Declaration:
    """A notebook's declared reads and writes; ``declared`` is False when it has none."""

    notebook: str
    reads: tuple[Read, ...] = ()
    writes: tuple[str, ...] = ()
    declared: bool = True


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` has glob wildcards."""
    return globlib.has_magic(pattern)


def _relative_pattern(name: str, what: str, text: str) -> str:
    path = PurePosixPath(text)
    if not text or path.is_absolute() or ".." in path.parts:
        raise DeclarationError(f"{name}: {what} {text!r} must be a relative path inside its directory "
                               "(no leading '/', no '..')")
    return str(path)


def read_declaration(path: Path | str) -> Declaration:
    """The ``metadata["ojpanel"]`` declaration of a notebook, checked for form.

    Raises
    ------
    DeclarationError
        If the block is not ``{"reads": [str], "writes": [str]}``, a read has an unknown kind or an
        empty target, or a path escapes its directory.
    """
    path = Path(path)
    import nbformat  # here, not at the top: importing it takes seconds, and every kernel imports this package

    nb = nbformat.read(str(path), as_version=4)
    block = nb.metadata.get("ojpanel")
    if block is None:
        return Declaration(path.stem, declared=False)
    if not isinstance(block, Mapping) or set(block) - {"reads", "writes"}:
        raise DeclarationError(f"{path.name}: metadata['ojpanel'] must be a mapping with keys 'reads' and "
                               f"'writes', got {block!r}; {_HOW}")
    lists = {}
    for key in ("reads", "writes"):
        value = block.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DeclarationError(f"{path.name}: metadata['ojpanel']['{key}'] must be a list of strings, "
                                   f"got {value!r}")
        lists[key] = value
    reads = []
    for text in lists["reads"]:
        kind, sep, target = text.partition(":")
        if not sep or kind not in READ_KINDS or not target.strip():
            raise DeclarationError(f"{path.name}: cannot read the declared input {text!r}; write it as kind:target "
                                   f"with kind one of {list(READ_KINDS)} (e.g. 'data:municipalities.csv', "
                                   "'records:01_build_panel')")
        target = target.strip()
        if kind in ("data", "file"):
            target = _relative_pattern(path.name, f"the declared input {kind}:", target)
        if kind == "output":
            nb_name, slash, rel = target.partition("/")
            if not slash or not nb_name:
                raise DeclarationError(f"{path.name}: the declared input {text!r} must name a notebook and a "
                                       "file, as output:<notebook>/<path>")
            target = f"{nb_name}/{_relative_pattern(path.name, 'the declared input output:', rel)}"
        reads.append(Read(kind, target, text))
    writes = tuple(_relative_pattern(path.name, "the declared output", w) for w in lists["writes"])
    return Declaration(path.stem, tuple(reads), writes, declared=True)


def matches_write(rel: str, patterns: Iterable[str]) -> bool:
    """Whether the path ``rel`` (relative to an output directory) is covered by a declared write."""
    # fnmatch's '*' crosses '/', so 'a/**/*' also needs its zero-directory form 'a/*'
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(rel, p.replace("**/", ""))
               for p in patterns)


def resolve_notebook(name: str, stems: Sequence[str], who: str = "", text: str = "") -> str:
    """The stem among ``stems`` that a declared read's notebook name (stem or number) refers to.

    Raises
    ------
    DeclarationError
        If no notebook or more than one matches.
    """
    found = [s for s in stems if s == name or s.startswith(f"{name}_")]
    if len(found) != 1:
        raise DeclarationError(f"{who or 'a notebook'}: the declared input {text!r} names notebook {name!r}, which "
                               f"{'is ambiguous' if found else 'does not exist'}; notebooks: {list(stems)}")
    return found[0]


def dependency_graph(declarations: Sequence[Declaration]) -> dict[str, tuple[str, ...]]:
    """The notebooks each notebook must wait for, in flow order.

    ``declarations`` are in flow order (as :func:`ojpanel.pipeline.discover` returns notebooks). A
    notebook depends on those whose records or declared outputs it reads; a notebook without a
    declaration depends on every earlier one.

    Raises
    ------
    DeclarationError
        If a read names an unknown notebook or itself, an ``output:`` read is not among the other
        notebook's declared writes, or the reads form a cycle.
    """
    stems = [d.notebook for d in declarations]
    by_stem = {d.notebook: d for d in declarations}
    graph: dict[str, tuple[str, ...]] = {}
    for i, d in enumerate(declarations):
        if not d.declared:
            graph[d.notebook] = tuple(stems[:i])
            continue
        deps: list[str] = []
        for r in d.reads:
            if r.notebook is None:
                continue
            up = resolve_notebook(r.notebook, stems, d.notebook, r.text)
            if up == d.notebook:
                raise DeclarationError(f"{d.notebook}: the declared input {r.text!r} reads the notebook itself")
            if r.kind == "output":
                rel = r.target.split("/", 1)[1]
                if not matches_write(rel, by_stem[up].writes):
                    raise DeclarationError(f"{d.notebook}: reads {r.text!r}, but {up} does not declare that it "
                                           f"writes {rel!r} (its writes: {list(by_stem[up].writes)})")
            if up not in deps:
                deps.append(up)
        graph[d.notebook] = tuple(sorted(deps, key=stems.index))
    _check_acyclic(graph)
    return graph


def _check_acyclic(graph: Mapping[str, Sequence[str]]) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(n: str, trail: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            cycle = trail[trail.index(n):] + [n]
            raise DeclarationError(f"the notebooks' declared reads form a cycle: {' -> '.join(cycle)}; "
                                   "a notebook can only read notebooks that do not read it")
        state[n] = 1
        for m in graph[n]:
            visit(m, [*trail, n])
        state[n] = 2

    for n in graph:
        visit(n, [])


def with_upstream(selected: Iterable[str], graph: Mapping[str, Sequence[str]]) -> set[str]:
    """``selected`` plus every notebook they (transitively) read."""
    out: set[str] = set()
    todo = list(selected)
    while todo:
        n = todo.pop()
        if n not in out:
            out.add(n)
            todo.extend(graph[n])
    return out


def input_files(read: Read, *, params: Mapping[str, Any], nb_dir: Path, data_dir: Path | None,
                out_dir: Path, stems: Sequence[str]) -> dict[str, Path]:
    """The files behind a ``data:``, ``file:``, ``param:`` or ``output:`` read, by a stable name.

    Names are relative to the read's base directory (the data directory, the notebook's directory,
    the parameter's path, the other notebook's output directory). ``records:`` reads have no files.
    A plain path that does not exist maps to a missing path (so its digest says "missing").
    """
    if read.kind == "records":
        return {}
    if read.kind == "output":
        nb_name, rel = read.target.split("/", 1)
        base, pattern = out_dir / resolve_notebook(nb_name, stems, text=read.text), rel
    elif read.kind == "param":
        value = params.get(read.target)
        if value in (None, ""):
            return {}
        p = Path(str(value))
        p = p if p.is_absolute() else nb_dir / p
        if p.is_dir():
            return {str(f.relative_to(p)): f for f in sorted(p.rglob("*")) if f.is_file()}
        return {p.name: p}
    else:
        base = data_dir if read.kind == "data" else nb_dir
        if base is None:
            raise DeclarationError(f"the declared input {read.text!r} needs the embedded data directory, "
                                   "which cannot be found; set OJPANEL_DATA_DIR")
        pattern = read.target
    if not is_glob(pattern):
        return {pattern: base / pattern}
    return {str(f.relative_to(base)): f for f in sorted(base.glob(pattern)) if f.is_file()}


def check_declared_inputs(declaration: Declaration, defaults: Mapping[str, Any], params: Mapping[str, Any],
                          nb_dir: Path, data_dir: Path | None) -> None:
    """Check, before anything runs, that the declared inputs of one notebook can exist.

    Raises
    ------
    DeclarationError
        If ``param:`` names no parameter or a path that does not exist, a plain (non-glob)
        ``data:``/``file:`` path is missing, or writes are declared without an ``out_dir`` parameter.
    """
    name = declaration.notebook
    effective = {**defaults, **params}
    for r in declaration.reads:
        if r.kind == "param":
            if r.target not in defaults:
                raise DeclarationError(f"{name}: the declared input {r.text!r} names no parameter; "
                                       f"its parameters are {sorted(defaults)}")
        if r.kind in ("data", "file", "param") and not (r.kind != "param" and is_glob(r.target)):
            files = input_files(r, params=effective, nb_dir=nb_dir, data_dir=data_dir, out_dir=nb_dir,
                                stems=[name])
            missing = [str(p) for p in files.values() if not p.exists()]
            if missing:
                what = (f"parameter {r.target} = {effective[r.target]!r} names" if r.kind == "param"
                        else f"declares that it reads {r.text!r}, but")
                raise DeclarationError(f"{name}: {what} {missing[0]}, which does not exist; "
                                       + ("give an existing path" if r.kind == "param"
                                          else "fix the path in its metadata['ojpanel']['reads']"))
    if declaration.writes and "out_dir" not in defaults:
        raise DeclarationError(f"{name}: declares writes {list(declaration.writes)} but has no out_dir "
                               "parameter; writes are paths inside the directory out_dir names")
