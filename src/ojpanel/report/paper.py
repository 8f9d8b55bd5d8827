"""Render the papers in ``papers/``: Markdown templates filled only from pipeline results.

A paper is a Jinja2 template (``paper.md``) whose numbers, tables and figures all come from the
pipeline's ``summary.json`` (the recorded results of every notebook) and the files the notebooks
wrote. A missing result is an error (StrictUndefined), so a paper never shows a stale or
hand-typed number. The output is ``paper.md`` with figures copied beside it, and ``paper.html``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ojpanel.config import REPO_ROOT
from ojpanel.errors import DataError

__all__ = ["render_paper", "default_paper_dir", "md_table", "fmt"]


def default_paper_dir() -> Path:
    """``papers/rir2021-replication`` in the checkout."""
    return REPO_ROOT / "papers" / "rir2021-replication"


def fmt(x: Any, digits: int = 3) -> str:
    """Numbers with ``digits`` significant digits; None as an en dash."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}".replace(",", " ")
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def md_table(rows: list[dict[str, Any]], columns: list[str] | None = None, digits: int = 3) -> str:
    """A Markdown table from a list of records (as recorded by notebooks)."""
    if not rows:
        return "*(no rows)*"
    cols = columns or list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c), digits) for c in cols) + " |")
    return "\n".join(lines)


def render_paper(summary_path: Path | str, out_dir: Path | str, paper_dir: Path | str | None = None) -> dict[str, Path]:
    """Fill the paper template from a pipeline summary and write Markdown and HTML.

    Parameters
    ----------
    summary_path
        ``summary.json`` written by :func:`ojpanel.pipeline.run_pipeline`.
    out_dir
        Where ``paper.md``, ``paper.html`` and ``figures/`` go.
    paper_dir
        Directory holding ``paper.md`` (the template); default ``papers/rir2021-replication``.

    Raises
    ------
    DataError
        If the summary lacks a result the paper uses, or a figure it includes does not exist.
    """
    import jinja2
    import mistune

    summary_path = Path(summary_path)
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    pipeline_dir = summary_path.parent
    paper_dir = Path(paper_dir) if paper_dir else default_paper_dir()
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    results = {nb["name"]: nb["records"] for nb in summary["notebooks"]}
    timings = {nb["name"]: nb["seconds"] for nb in summary["notebooks"]}

    def figure(rel: str, caption: str) -> str:
        src = pipeline_dir / rel
        if not src.is_file():
            raise DataError(f"the paper includes {rel}, which the pipeline did not write ({src})")
        dst = out / "figures" / rel.replace("/", "__")
        shutil.copyfile(src, dst)
        return f"![{caption}](figures/{dst.name})\n\n*{caption}*"

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["fmt"] = fmt
    env.filters["pct"] = lambda x, d=1: "–" if x is None else f"{100 * x:.{d}f} %"
    template = env.from_string((paper_dir / "paper.md").read_text(encoding="utf-8"))
    try:
        text = template.render(r=results, timings=timings, summary=summary, figure=figure, table=md_table)
    except jinja2.UndefinedError as exc:
        raise DataError(f"the paper uses a result the pipeline did not record ({exc.message}); "
                        "rerun `ojpanel pipeline run` with every notebook") from exc
    md_path = out / "paper.md"
    md_path.write_text(text, encoding="utf-8")
    body = mistune.html(text)
    html = ("<!doctype html><html><head><meta charset='utf-8'><title>RiR 2021:17 replication</title>"
            "<style>body{max-width:52em;margin:2em auto;font-family:Georgia,serif;line-height:1.45}"
            "table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #bbb;padding:.2em .5em}"
            "img{max-width:100%}</style></head><body>" + body + "</body></html>")
    html_path = out / "paper.html"
    html_path.write_text(html, encoding="utf-8")
    return {"markdown": md_path, "html": html_path}
