"""``ojpanel fetch`` (Kolada → snapshot directory) and ``ojpanel kpi search/show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ojpanel.cli._common import (
    EXIT_INTERRUPTED,
    Command,
    command_line,
    console,
    err_console,
    examples,
    fail,
    handle_errors,
    new_app,
    parse_list,
    parse_years,
)

__all__ = ["register", "PRESETS", "preset_kpis"]

#: Named KPI lists for ``--preset``.
PRESETS = {
    "rir2021": "every KPI of the RiR 2021:17 harmonisation spec (data/indicators/rir2021.toml)",
    "oj-socialtjanst": "every KPI of the embedded Öppna jämförelser social-services catalogue",
}

kpi_app = new_app("Look up Kolada KPIs in the embedded catalogue (or live with --live).")


def preset_kpis(name: str) -> list[str]:
    """KPI ids of a preset (see :data:`PRESETS`)."""
    from ojpanel.errors import ParameterError

    if name == "rir2021":
        from ojpanel.indicators.spec import load_spec

        return load_spec().kpis()
    if name == "oj-socialtjanst":
        from ojpanel.indicators.catalogue import load_catalogue

        return sorted(load_catalogue()["id"])
    raise ParameterError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")


def _client(base_url: str | None, cache_dir: Path | None, *, offline: bool = False, no_cache: bool = False,
            retries: int = 5, backoff: float = 1.0, timeout: float = 30.0,
            deadline: float | None = 900.0):  # fmt: skip
    from ojpanel.config import cache_dir as default_cache_dir
    from ojpanel.data.kolada import KoladaClient, RetryPolicy
    from ojpanel.errors import ParameterError

    if retries < 0 or backoff < 0:
        raise ParameterError("--retries and --backoff must not be negative")
    if not timeout > 0:
        raise ParameterError(f"--timeout must be a positive number of seconds; got {timeout:g}")
    if deadline is not None and deadline < 0:
        raise ParameterError(
            f"--deadline must be a positive number of seconds (0 for none); got {deadline:g}"
        )
    if no_cache and offline:
        raise ParameterError("--offline reads the cache, so it cannot be combined with --no-cache")
    cache = None if no_cache else (cache_dir or default_cache_dir() / "kolada")
    policy = RetryPolicy(retries=retries, backoff=backoff, timeout=timeout, deadline=deadline)
    return KoladaClient(base_url, cache=cache, offline=offline, retry=policy)


def fetch(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Snapshot directory to create (values.csv.gz + provenance.json)."
        ),
    ],
    kpi: Annotated[
        str | None, typer.Option("--kpi", help="Comma-separated KPI ids, e.g. U21468,U23471.")
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="Named KPI list: rir2021 or oj-socialtjanst.")
    ] = None,
    years: Annotated[
        str | None,
        typer.Option(
            "--years",
            help="Years, e.g. 2016-2020 or 2016,2018 (default for --preset rir2021: 2016-2020).",
        ),
    ] = None,
    municipalities: Annotated[
        str | None,
        typer.Option(
            "--municipalities", help="Comma-separated municipality or group ids (default: all)."
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="OJPANEL_KOLADA_URL",
            help="Kolada API root (default https://api.kolada.se/v3; …/v2 for v2; or a mirror).",
        ),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="Use only the cache; fail naming every request that is missing."
        ),
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="HTTP cache directory (default: $OJPANEL_CACHE_DIR or ~/.cache/ojpanel, subfolder kolada).",
        ),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the cache.")
    ] = False,
    keep_deleted: Annotated[
        bool,
        typer.Option(
            "--keep-deleted", help="Keep rows Kolada marks deleted (with a 'deleted' column)."
        ),
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing snapshot directory.")
    ] = False,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Write an empty snapshot when Kolada has no values (otherwise an error).",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", help="Seconds each request may wait for the server."),
    ] = 30.0,
    deadline: Annotated[
        float,
        typer.Option(
            "--deadline",
            help="Seconds the whole fetch may take, retries and waits included (0: no limit).",
        ),
    ] = 900.0,
    retries: Annotated[
        int, typer.Option("--retries", help="Retries per request on 429/5xx/time-outs.")
    ] = 5,
    backoff: Annotated[
        float,
        typer.Option(
            "--backoff", help="First wait between retries in seconds (doubles each retry)."
        ),
    ] = 1.0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or progress lines.")
    ] = False,
) -> None:
    """Fetch KPI values from Kolada into a snapshot directory (all or nothing).

    Complete requests are cached, so a fetch that stops (Ctrl-C, a failure, the deadline)
    resumes where it stopped when the same command is run again.
    """
    with handle_errors():
        from ojpanel.data.snapshot import fetch_snapshot, snapshot_lock, write_snapshot
        from ojpanel.errors import ParameterError

        if (kpi is None) == (preset is None):
            raise ParameterError(
                "give exactly one of --kpi ID[,ID…] or --preset rir2021|oj-socialtjanst"
            )
        ids = preset_kpis(preset) if preset else (parse_list(kpi) or [])
        year_list = parse_years(years)
        muni_list = parse_list(municipalities)
        if year_list is None and muni_list is None:
            if preset == "rir2021":
                from ojpanel.indicators.spec import load_spec

                first, last = load_spec().years
                year_list = list(range(first, last + 1))
            else:
                raise ParameterError(
                    "give --years (e.g. 2016-2020) and/or --municipalities: Kolada needs two dimensions"
                )
        out_path = Path(out)
        if (
            out_path.exists()
            and (not out_path.is_dir() or any(out_path.iterdir()))
            and not overwrite
        ):
            raise ParameterError(
                f"{out_path} already exists and is not empty; choose another --out or add --overwrite"
            )
        client = _client(
            base_url,
            cache_dir,
            offline=offline,
            no_cache=no_cache,
            retries=retries,
            backoff=backoff,
            timeout=timeout,
            deadline=None if deadline == 0 else deadline,
        )
        with snapshot_lock(out_path):
            try:
                snap = fetch_snapshot(
                    client,
                    ids,
                    years=year_list,
                    municipalities=muni_list,
                    keep_deleted=keep_deleted,
                    allow_empty=allow_empty,
                    progress=not quiet,
                )
            except KeyboardInterrupt:
                _interrupted(ctx, client, ids, muni_list, year_list, out_path)
            write_snapshot(snap, out_path, overwrite=overwrite)
        prov = snap.provenance
        missing = prov["rows"]["kpis_without_values"]
        console.print(snap.summary, highlight=False)
        if missing:
            err_console.print(
                f"note: {len(missing)} KPI(s) returned no values: {', '.join(missing[:20])}"
                + (" …" if len(missing) > 20 else ""),
                highlight=False,
            )
        console.print(f"wrote snapshot {out_path}", highlight=False)


def _interrupted(ctx: typer.Context, client, ids, munis, years, out: Path) -> None:
    """After Ctrl-C: say what is cached and the command that resumes, then exit 130."""
    urls = client.data_urls(ids, munis, years)
    if client.cache is None:
        kept = "nothing was cached (--no-cache), so a new run starts from the beginning"
    else:
        done = len(urls) - len(client.missing(urls))
        kept = (f"{done} of {len(urls)} request(s) are complete and cached in {client.cache.root}; "
                "a new run fetches only the rest")
    err_console.print(f"interrupted: {kept}. Nothing was written to {out}.", highlight=False,
                      soft_wrap=True, markup=False)
    err_console.print(f"resume with: {command_line(ctx)}", highlight=False, soft_wrap=True,
                      markup=False)
    fail("fetch interrupted (Ctrl-C)", EXIT_INTERRUPTED)


def _catalogue_table(rows, title: str):
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in ("id", "area", "kind", "scale", "title"):
        table.add_column(col, overflow="fold")
    for r in rows.itertuples():
        table.add_row(r.id, str(r.area), str(r.kind), str(r.scale), r.title)
    return table


@kpi_app.command(
    "search", cls=Command,
    epilog=examples('ojpanel kpi search "hemtjänst helhetssyn"', "ojpanel kpi search brukarbedömning --live"),
)
def kpi_search(
    text: Annotated[
        str, typer.Argument(help="Words that must all occur in the title (case-insensitive).")
    ],
    live: Annotated[
        bool, typer.Option("--live", help="Ask the Kolada API instead of the embedded catalogue.")
    ] = False,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", envvar="OJPANEL_KOLADA_URL", help="Kolada API root for --live."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many.")] = 50,
) -> None:
    """Find KPIs by words in their title."""
    with handle_errors():
        import pandas as pd

        from ojpanel.errors import ParameterError

        words = [w.lower() for w in text.split() if w.strip()]
        if not words:
            raise ParameterError("give at least one search word")
        if live:
            client = _client(base_url, None, no_cache=True)
            found = pd.DataFrame(client.kpis(title=words[0]))
            if found.empty:
                found = pd.DataFrame(columns=["id", "title"])
            for col in ("area", "kind", "scale"):
                found[col] = found.get("operating_area", "") if col == "area" else ""
            source = f"Kolada {client.base_url}"
        else:
            from ojpanel.indicators.catalogue import load_catalogue

            found = load_catalogue()
            source = "embedded catalogue"
        titles = found["title"].astype(str).str.lower()
        mask = pd.Series(True, index=found.index)
        for w in words:
            mask &= titles.str.contains(w, regex=False) | found["id"].astype(str).str.lower().eq(w)
        hits = found.loc[mask].sort_values("id")
        if hits.empty:
            raise ParameterError(
                f"no KPI in the {source} has all of {words} in its title; try fewer words"
            )
        console.print(
            _catalogue_table(hits.head(limit), f"{len(hits)} KPI(s) matching '{text}' ({source})")
        )
        if len(hits) > limit:
            console.print(f"… {len(hits) - limit} more; use --limit", highlight=False)


@kpi_app.command("show", cls=Command, epilog=examples("ojpanel kpi show U21468"))
def kpi_show(
    kpi_id: Annotated[str, typer.Argument(help="KPI id, e.g. U21468.")],
    live: Annotated[
        bool, typer.Option("--live", help="Ask the Kolada API instead of the embedded catalogue.")
    ] = False,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", envvar="OJPANEL_KOLADA_URL", help="Kolada API root for --live."),
    ] = None,
) -> None:
    """Everything known about one KPI."""
    with handle_errors():
        from ojpanel.errors import ParameterError

        if live:
            client = _client(base_url, None, no_cache=True)
            rows = client.kpis([kpi_id])
            if not rows:
                raise ParameterError(f"Kolada ({client.base_url}) has no KPI {kpi_id!r}")
            record = {k: v for k, v in rows[0].items()}
        else:
            from ojpanel.indicators.catalogue import load_catalogue

            cat = load_catalogue()
            hit = cat.loc[cat["id"] == kpi_id]
            if hit.empty:
                raise ParameterError(
                    f"{kpi_id!r} is not in the embedded catalogue; try `ojpanel kpi search WORDS` or add --live"
                )
            record = hit.iloc[0].to_dict()
        from ojpanel.indicators.spec import load_spec

        used = [v.id for v in load_spec().variables if kpi_id in v.kpis]
        width = max(len(k) for k in record)
        for k, v in record.items():
            console.print(f"{k:<{width}}  {v}", highlight=False, soft_wrap=True)
        if used:
            console.print(f"{'rir2021 variables':<{width}}  {', '.join(used)}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``fetch`` and the ``kpi`` group to the main app."""
    app.command("fetch", cls=Command, epilog=examples(
        "ojpanel fetch --preset rir2021 --out snap/",
        "ojpanel fetch --kpi U21468,U23471 --years 2016-2020 --out snap/ --timeout 20 --deadline 600",
    ))(fetch)
    app.add_typer(kpi_app, name="kpi")
