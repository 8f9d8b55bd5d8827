"""Declarative harmonisation specs (``data/indicators/*.toml``): loading and checking.

A spec lists variables; each variable names a rule from the closed set :data:`RULES` and its
components (one KPI over a span of years, with the Kolada code → answer mapping for that span).
The file holds no expressions: what each rule does is implemented in
:mod:`ojpanel.indicators.harmonise`. :func:`load_spec` checks everything a rule relies on, so a
mistake in the file is reported when it is read, naming the variable and component.
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ojpanel.config import data_dir
from ojpanel.core.scales import SCALES
from ojpanel.errors import DataError, ParameterError

__all__ = [
    "LABELS",
    "RULES",
    "ROLES",
    "Component",
    "Variable",
    "Spec",
    "load_spec",
    "spec_path",
]

#: Answer labels a Kolada code can map to.
LABELS = ("ja", "delvis", "nej")
_KINDS = ("structure", "process", "result", "background")
_AREAS = ("äldreomsorg", "ekonomiskt bistånd", "barn och unga")
_SOURCES = ("kommunenkät", "enhetsundersökning", "brukarundersökning", "register")

#: Rule name -> (roles it accepts, roles it requires, labels allowed per role or None for numeric).
RULES: dict[str, dict[str, Any]] = {
    "as_is": {
        "doc": "One item used as it is: ja=1/nej=0 (binary), ja=2/delvis=1/nej=0 (ordinal), or the number.",
        "roles": {"item"},
        "required": {"item"},
    },
    "yes_partial_to_one": {
        "doc": "1 if ja or delvis in at least one setting, 0 if nej in every setting.",
        "roles": {"setting"},
        "required": {"setting"},
        "labels": {"setting": set(LABELS)},
    },
    "ja_only_to_one": {
        "doc": "1 if ja (top answer), 0 if delvis or nej.",
        "roles": {"item"},
        "required": {"item"},
        "labels": {"item": set(LABELS)},
    },
    "any_setting": {
        "doc": "1 if ja in at least one setting, 0 if nej in every setting.",
        "roles": {"setting"},
        "required": {"setting"},
        "labels": {"setting": {"ja", "nej"}},
    },
    "audit_dudit_combined": {
        "doc": "0/1/2: the joint item's nej/delvis/ja, or the number of ja among the alcohol and drug items.",
        "roles": {"joint", "alcohol", "drugs"},
        "required": {"alcohol", "drugs"},
        "labels": {"joint": set(LABELS), "alcohol": {"ja", "nej"}, "drugs": {"ja", "nej"}},
    },
    "isu_gender_joint_2016": {
        "doc": "The joint item's ja=1/nej=0 where it exists (2016), else 1 if ja in at least one setting.",
        "roles": {"joint", "setting"},
        "required": {"setting"},
        "labels": {"joint": {"ja", "nej"}, "setting": {"ja", "nej"}},
    },
    "preferred_else_any": {
        "doc": "The preferred item's ja=1/nej=0 where it has a value, else 1 if ja in at least one fallback item.",
        "roles": {"preferred", "fallback"},
        "required": {"preferred", "fallback"},
        "labels": {"preferred": {"ja", "nej"}, "fallback": {"ja", "nej"}},
    },
}
ROLES = tuple(sorted({r for v in RULES.values() for r in v["roles"]}))


@dataclass(frozen=True)
class Component:
    """One KPI over a span of years, with its coding for that span.

    Attributes
    ----------
    kpi, role, what
        Kolada id, its role in the rule, and what it measures.
    years
        ``(first, last)`` inclusive.
    codes
        Kolada code → answer label (``ja``/``delvis``/``nej``), or None for numeric KPIs.
    value_range
        Allowed ``(low, high)`` for numeric KPIs, or None for coded KPIs.
    raw_coding, id_assumed, note
        Documentation; ``id_assumed`` marks an id that no catalogue confirms.
    """

    kpi: str
    role: str
    what: str
    years: tuple[int, int]
    codes: Mapping[int, str] | None
    value_range: tuple[float, float] | None
    raw_coding: str = ""
    id_assumed: bool = False
    note: str = ""

    def covers(self, year: int) -> bool:
        """Whether this component's coding applies in ``year``."""
        return self.years[0] <= year <= self.years[1]


@dataclass(frozen=True)
class Variable:
    """One harmonised variable of a spec (see the spec file's header for the fields)."""

    id: str
    area: str
    group: str
    label: str
    title: str
    kind: str
    scale: str
    direction: int
    source: str
    rule: str
    years: tuple[int, int]
    default: bool
    confidence: str
    components: tuple[Component, ...]
    breaks: tuple[tuple[int, str], ...] = ()
    note: str = ""

    @property
    def kpis(self) -> tuple[str, ...]:
        """Distinct KPI ids of the components, in order."""
        return tuple(dict.fromkeys(c.kpi for c in self.components))


class Spec:
    """A checked harmonisation spec.

    Parameters
    ----------
    name, title
        Spec name and description.
    years
        The spec's analysis period ``(first, last)``.
    variables
        The variables, in file order.
    path
        Where it was read from.
    """

    def __init__(
        self,
        name: str,
        title: str,
        years: tuple[int, int],
        variables: Iterable[Variable],
        path: Path | None,
    ):
        self._name = name
        self._title = title
        self._years = years
        self._vars = tuple(variables)
        self._by_id = {v.id: v for v in self._vars}
        self._path = path

    @property
    def name(self) -> str:
        """Spec name (e.g. ``rir2021``)."""
        return self._name

    @property
    def title(self) -> str:
        """One-line description."""
        return self._title

    @property
    def years(self) -> tuple[int, int]:
        """Analysis period ``(first, last)``."""
        return self._years

    @property
    def path(self) -> Path | None:
        """File the spec was read from."""
        return self._path

    @property
    def variables(self) -> tuple[Variable, ...]:
        """All variables in file order."""
        return self._vars

    def __len__(self) -> int:
        return len(self._vars)

    def __getitem__(self, variable_id: str) -> Variable:
        try:
            return self._by_id[variable_id]
        except KeyError:
            raise ParameterError(
                f"spec {self._name!r} has no variable {variable_id!r}; known: {', '.join(self._by_id)}"
            ) from None

    def select(
        self, ids: Iterable[str] | None = None, *, include_alternatives: bool = False
    ) -> tuple[Variable, ...]:
        """Variables by id (in the order given), or the default set (plus alternatives if asked)."""
        if ids is not None:
            return tuple(self[i] for i in ids)
        return tuple(v for v in self._vars if v.default or include_alternatives)

    def kpis(self, *, include_alternatives: bool = True) -> list[str]:
        """Every KPI id the spec uses (sorted)."""
        return sorted(
            {k for v in self.select(include_alternatives=include_alternatives) for k in v.kpis}
        )

    def metadata(self, variables: Iterable[Variable] | None = None) -> pd.DataFrame:
        """Panel metadata: ``id, title, area, kind, scale, direction, source, group``."""
        vs = self._vars if variables is None else tuple(variables)
        return pd.DataFrame(
            [
                {"id": v.id, "title": v.title, "area": v.area, "kind": v.kind, "scale": v.scale,
                 "direction": v.direction, "source": v.source, "group": v.group}
                for v in vs
            ],
            columns=["id", "title", "area", "kind", "scale", "direction", "source", "group"],
        ).astype({"direction": "int64"})  # fmt: skip

    def to_frame(self) -> pd.DataFrame:
        """One row per component: variable, rule, kpi, role, years, coding, flags."""
        rows = []
        for v in self._vars:
            for c in v.components:
                rows.append({
                    "variable": v.id, "rule": v.rule, "default": v.default, "confidence": v.confidence,
                    "kpi": c.kpi, "role": c.role, "first_year": c.years[0], "last_year": c.years[1],
                    "codes": "" if c.codes is None else ", ".join(f"{k}={lab}" for k, lab in sorted(c.codes.items(), reverse=True)),
                    "value_range": "" if c.value_range is None else f"[{c.value_range[0]:g}, {c.value_range[1]:g}]",
                    "id_assumed": c.id_assumed, "what": c.what,
                })  # fmt: skip
        return pd.DataFrame(rows)

    def breaks(self) -> pd.DataFrame:
        """Series breaks flagged in the spec: ``variable, year, what``."""
        return pd.DataFrame(
            [{"variable": v.id, "year": y, "what": w} for v in self._vars for y, w in v.breaks],
            columns=["variable", "year", "what"],
        )

    @property
    def summary(self) -> str:
        """Counts by area and rule."""
        df = pd.DataFrame(
            [{"area": v.area, "rule": v.rule, "default": v.default} for v in self._vars]
        )
        lines = [f"Spec {self._name}: {len(self)} variables ({int(df['default'].sum())} in the default set), "
                 f"{len(self.kpis())} KPIs, {self._years[0]}–{self._years[1]}"]  # fmt: skip
        lines += [f"  {rule}: {n}" for rule, n in df["rule"].value_counts().sort_index().items()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False)


def spec_path(name: str = "rir2021") -> Path:
    """Path of an embedded spec (``data/indicators/<name>.toml``)."""
    p = data_dir() / "indicators" / f"{name}.toml"
    if not p.is_file():
        raise ParameterError(f"no embedded harmonisation spec {name!r} ({p} not found)")
    return p


def _years(raw: Any, where: str) -> tuple[int, int]:
    if not (
        isinstance(raw, list)
        and len(raw) == 2
        and all(isinstance(y, int) for y in raw)
        and raw[0] <= raw[1]
    ):
        raise DataError(f"{where}: years must be [first, last] with first <= last, got {raw!r}")
    return (int(raw[0]), int(raw[1]))


def _component(raw: Mapping[str, Any], where: str, scale: str) -> Component:
    for key in ("kpi", "role", "years"):
        if key not in raw:
            raise DataError(f"{where}: missing '{key}'")
    codes = raw.get("codes")
    vrange = raw.get("value_range")
    if (codes is None) == (vrange is None):
        raise DataError(
            f"{where}: give exactly one of 'codes' (coded answers) or 'value_range' (numbers)"
        )
    parsed: dict[int, str] | None = None
    if codes is not None:
        parsed = {}
        for k, lab in codes.items():
            try:
                code = int(k)
            except ValueError:
                raise DataError(f"{where}: code {k!r} is not an integer") from None
            if lab not in LABELS:
                raise DataError(
                    f"{where}: code {k} maps to {lab!r}; labels must be one of {LABELS}"
                )
            parsed[code] = lab
        if len(set(parsed.values())) != len(parsed):
            raise DataError(f"{where}: two codes map to the same label ({codes!r})")
        if scale in {"share", "rate", "mean", "count"}:
            raise DataError(
                f"{where}: a {scale} variable needs numeric components (value_range), not codes"
            )
    rng: tuple[float, float] | None = None
    if vrange is not None:
        if not (
            isinstance(vrange, list)
            and len(vrange) == 2
            and all(isinstance(x, (int, float)) for x in vrange)
        ):
            raise DataError(f"{where}: value_range must be [low, high], got {vrange!r}")
        rng = (float(vrange[0]), float(vrange[1]))
        if not rng[0] <= rng[1] or math.isnan(rng[0]) or math.isnan(rng[1]):
            raise DataError(f"{where}: value_range {vrange!r} is empty")
    unknown = set(raw) - {
        "kpi",
        "role",
        "what",
        "years",
        "codes",
        "value_range",
        "raw_coding",
        "id_assumed",
        "note",
    }
    if unknown:
        raise DataError(f"{where}: unknown key(s) {sorted(unknown)}")
    if raw.get("id_assumed") and not raw.get("note"):
        raise DataError(f"{where}: id_assumed needs a 'note' saying why and what to check")
    return Component(
        kpi=str(raw["kpi"]),
        role=str(raw["role"]),
        what=str(raw.get("what", "")),
        years=_years(raw["years"], where),
        codes=parsed,
        value_range=rng,
        raw_coding=str(raw.get("raw_coding", "")),
        id_assumed=bool(raw.get("id_assumed", False)),
        note=str(raw.get("note", "")),
    )


def _check_rule(v: Variable, where: str) -> None:
    rule = RULES[v.rule]
    roles = [c.role for c in v.components]
    bad = sorted(set(roles) - rule["roles"])
    if bad:
        raise DataError(f"{where}: rule {v.rule} takes roles {sorted(rule['roles'])}, not {bad}")
    lacking = sorted(rule["required"] - set(roles))
    if lacking:
        raise DataError(f"{where}: rule {v.rule} needs component role(s) {lacking}")
    allowed = rule.get("labels")
    for c in v.components:
        if c.codes is None:
            if allowed is not None or v.scale in {"binary", "ordinal"}:
                raise DataError(
                    f"{where}: rule {v.rule} with scale {v.scale} needs coded components; {c.kpi} has none"
                )
            continue
        ok = allowed[c.role] if allowed else ({"ja", "nej"} if v.scale == "binary" else set(LABELS))
        extra = sorted(set(c.codes.values()) - ok)
        if extra:
            raise DataError(
                f"{where}: component {c.kpi} ({c.role}) has label(s) {extra} that rule {v.rule} "
                f"(scale {v.scale}) cannot use; allowed: {sorted(ok)}"
            )
    if v.rule in {"as_is", "ja_only_to_one"} and len({c.kpi for c in v.components}) != 1:
        raise DataError(f"{where}: rule {v.rule} takes one KPI (one component per coding period)")
    if (
        v.rule == "preferred_else_any"
        and len({c.kpi for c in v.components if c.role == "preferred"}) != 1
    ):
        raise DataError(f"{where}: rule preferred_else_any takes exactly one preferred KPI")
    expect_scale = {"audit_dudit_combined": "ordinal", "yes_partial_to_one": "binary", "any_setting": "binary",
                    "ja_only_to_one": "binary", "isu_gender_joint_2016": "binary", "preferred_else_any": "binary"}  # fmt: skip
    if v.rule in expect_scale and v.scale != expect_scale[v.rule]:
        raise DataError(
            f"{where}: rule {v.rule} produces scale {expect_scale[v.rule]}, not {v.scale}"
        )
    # the same KPI in the same year must have one coding and one role
    seen: dict[tuple[str, int], str] = {}
    for c in v.components:
        for y in range(c.years[0], c.years[1] + 1):
            if (c.kpi, y) in seen:
                raise DataError(
                    f"{where}: {c.kpi} is given twice for {y} ({seen[(c.kpi, y)]} and {c.role})"
                )
            seen[(c.kpi, y)] = c.role
    if "joint" in roles:
        joint_years = {
            y for c in v.components if c.role == "joint" for y in range(c.years[0], c.years[1] + 1)
        }
        other = {
            y for c in v.components if c.role != "joint" for y in range(c.years[0], c.years[1] + 1)
        }
        if joint_years & other:
            raise DataError(
                f"{where}: the joint item and the separate items overlap in {sorted(joint_years & other)}"
            )


def _variable(raw: Mapping[str, Any], where: str) -> Variable:
    for key in (
        "id",
        "area",
        "group",
        "label",
        "kind",
        "scale",
        "direction",
        "source",
        "rule",
        "component",
    ):
        if key not in raw:
            raise DataError(f"{where}: missing '{key}'")
    vid = str(raw["id"])
    where = f"{where} ({vid})"
    checks = (
        ("rule", RULES),
        ("scale", SCALES),
        ("kind", _KINDS),
        ("area", _AREAS),
        ("source", _SOURCES),
    )
    for key, allowed in checks:
        if raw[key] not in allowed:
            raise DataError(f"{where}: {key} {raw[key]!r} is not one of {sorted(allowed)}")
    if raw["direction"] not in (-1, 0, 1):
        raise DataError(f"{where}: direction must be -1, 0 or 1")
    unknown = set(raw) - {"id", "area", "group", "label", "title", "kind", "scale", "direction", "source", "rule",
                          "years", "default", "confidence", "breaks", "note", "component"}  # fmt: skip
    if unknown:
        raise DataError(f"{where}: unknown key(s) {sorted(unknown)}")
    comps = tuple(
        _component(c, f"{where} component {i + 1}", raw["scale"])
        for i, c in enumerate(raw["component"])
    )
    breaks = []
    for b in raw.get("breaks", []):
        if not isinstance(b, Mapping) or not isinstance(b.get("year"), int) or not b.get("what"):
            raise DataError(f"{where}: each break needs an integer 'year' and a 'what'")
        breaks.append((int(b["year"]), str(b["what"])))
    v = Variable(
        id=vid,
        area=raw["area"],
        group=str(raw["group"]),
        label=str(raw["label"]),
        title=str(raw.get("title", raw["label"])),
        kind=raw["kind"],
        scale=raw["scale"],
        direction=int(raw["direction"]),
        source=raw["source"],
        rule=raw["rule"],
        years=_years(raw.get("years", [0, 9999]), where),
        default=bool(raw.get("default", True)),
        confidence=str(raw.get("confidence", "")),
        components=comps,
        breaks=tuple(breaks),
        note=str(raw.get("note", "")),
    )
    _check_rule(v, where)
    return v


@functools.lru_cache(maxsize=8)
def _load(path: str) -> Spec:
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path}: not valid TOML ({exc})") from exc
    head = raw.get("spec", {})
    if "variable" not in raw or not raw["variable"]:
        raise DataError(f"{path}: no [[variable]] entries")
    variables = [_variable(v, f"{path}: variable {i + 1}") for i, v in enumerate(raw["variable"])]
    ids = [v.id for v in variables]
    dups = sorted({i for i in ids if ids.count(i) > 1})
    if dups:
        raise DataError(f"{path}: duplicate variable id(s) {dups}")
    # a KPI-year must have the same coding wherever the spec uses it
    coding: dict[tuple[str, int], tuple[Any, str]] = {}
    for v in variables:
        for c in v.components:
            key_codes = tuple(sorted(c.codes.items())) if c.codes else ("range", c.value_range)
            for y in range(c.years[0], c.years[1] + 1):
                prev = coding.setdefault((c.kpi, y), (key_codes, v.id))
                if prev[0] != key_codes:
                    raise DataError(
                        f"{path}: {c.kpi} in {y} is coded differently in {prev[1]} and {v.id}"
                    )
    return Spec(
        name=str(head.get("name", Path(path).stem)),
        title=str(head.get("title", "")),
        years=_years(head.get("years", [2016, 2020]), f"{path}: [spec]"),
        variables=variables,
        path=Path(path),
    )


def load_spec(path: str | Path | None = None) -> Spec:
    """Read and check a harmonisation spec (default: the embedded ``rir2021.toml``).

    Raises
    ------
    DataError
        Naming the variable and component of the first problem: unknown rule, role, label, scale,
        kind, area or source; a rule's missing component; codes that are not integers; a KPI given
        twice for the same year; or one KPI-year coded in two ways.
    """
    p = Path(path) if path is not None else spec_path("rir2021")
    return _load(str(p.resolve()))
