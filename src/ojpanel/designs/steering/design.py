"""The knowledge-steering designs as objects: each regression defined once, with its defaults.

As for the peer and users designs (:mod:`ojpanel.designs.design`), a :class:`SteeringDesign` says
once which outcome, regressors, absorbed effects, clusters and sample a design uses, with the
defaults of its data step (peer group, items, comparison items, inference) and what the power
simulation plants and reads. The fits (:func:`~ojpanel.designs.steering.transitions.fit_adoption`,
:func:`~ojpanel.designs.steering.combined.steering_vs_benchmarking`,
:func:`~ojpanel.designs.steering.moderator.oj_use_moderator`, the two event studies), their
inference and :func:`~ojpanel.designs.steering.power.steering_power` all ask the design instead
of restating it.

The designs:

==============================  ===========================================================
:data:`ADOPTION`                red-flag hazard LPM on pairs at risk
:data:`ADOPTION_LOGIT`          the same hazard as a logit with item, area×year, county dummies
:data:`COMBINED`                steering (red flag) and benchmarking (peer share) jointly
:data:`OJ_USE`                  users vs non-users with a pre-period placebo (:data:`OJ_USE_SHOCKS`
                                holds its variant within county × item × year cells)
:data:`EVENT_STUDY`             item-introduction group-time ATTs, two-way (item, municipality)
                                inference (:mod:`ojpanel.designs.steering.item_inference`)
:data:`TWFE_EVENT_STUDY`        the naive two-way FE event study
==============================  ===========================================================

:data:`POWER_DESIGNS` names the designs :func:`~ojpanel.designs.steering.power.steering_power`
simulates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ojpanel.designs.steering._common import fit_fe
from ojpanel.errors import ModelError, ParameterError

__all__ = [
    "SteeringDesign",
    "ADOPTION",
    "ADOPTION_LOGIT",
    "COMBINED",
    "OJ_USE",
    "OJ_USE_SHOCKS",
    "EVENT_STUDY",
    "TWFE_EVENT_STUDY",
    "POWER_DESIGNS",
    "ESTIMATORS",
    "effect_column",
    "full_rank",
]

#: How a design estimates: fixed-effects OLS (:func:`ojpanel.models.fe.fit_panel`), a logit with
#: dummies (statsmodels), or group-time ATTs against comparison items.
ESTIMATORS = ("fe", "logit", "cohort")

Effect = str | tuple[str, ...]


def effect_column(frame: pd.DataFrame, effect: Effect) -> pd.Series:
    """One absorbed effect as a column of labels (``("area", "year")`` → ``"area:year"``)."""
    if isinstance(effect, str):
        return frame[effect].astype(str)
    out = frame[effect[0]].astype(str)
    for c in effect[1:]:
        out = out + ":" + frame[c].astype(str)
    return out


def full_rank(X: pd.DataFrame, keep: Sequence[str]) -> pd.DataFrame:
    """Drop dummy columns that are linear combinations of earlier ones (``keep`` always stays).

    Area×year dummies and item dummies are collinear when areas hold several items; inverting the
    singular Hessian of such a design gives wrong (not just imprecise) sandwich standard errors.

    Raises
    ------
    ModelError
        If the ``keep`` columns themselves are collinear.
    """
    names = list(X.columns)
    A = X.to_numpy(dtype=float)
    n = len(A)
    # X = QR with orthonormal Q: any set of X's columns has the rank of the same columns of R
    # (k × k), so each trial is a small SVD; the tolerance is numpy's for the n-row columns
    R = np.linalg.qr(A, mode="r")

    def rank(idx: list[int]) -> int:
        s = np.linalg.svd(R[:, idx], compute_uv=False)
        return int((s > s.max(initial=0.0) * max(n, len(idx)) * np.finfo(float).eps).sum())

    chosen = [names.index(c) for c in keep]
    current = rank(chosen)
    if current < len(chosen):
        raise ModelError(f"the regressors {list(keep)} are collinear; drop one")
    for j, c in enumerate(names):
        if c in keep:
            continue
        r = rank([*chosen, j])
        if r > current:
            chosen.append(j)
            current = r
    return X[[names[j] for j in chosen]]


@dataclass(frozen=True)
class SteeringDesign:
    """One knowledge-steering design (see the module docstring for the instances).

    Parameters
    ----------
    name
        Short name (also the fit's label).
    outcome
        Outcome column of the long frame: ``"adopt"`` (pairs at risk) or ``"yes"``.
    regressors
        Default regressors, the tested one first (empty when the data step makes them, e.g. the
        event-time dummies).
    estimator
        One of :data:`ESTIMATORS`.
    entity, entity_effects
        Unit of the absorbed unit effects (``"municipality"``, or ``"pair"`` = item × municipality)
        and whether they enter.
    other_effects
        Further absorbed effects: columns or tuples of columns (their interaction). The logit
        enters them as dummies.
    cluster
        Cluster variable of the standard errors.
    inference
        ``"clustered"`` (by :attr:`cluster`), or for the cohort event study
        ``"item_municipality"`` / ``"municipality"``.
    effects_label, sample
        How results describe the effects and the estimation sample.
    peer_group
        Municipality coordinate defining peers for the peer share (None: no peer share).
    items
        ``"established"`` (items asked before the panel starts) or ``"all"``.
    exclude_coloured
        Leave comparison items shown with colours in the window out (event studies).
    oj_year
        Year the OJ-use status was measured (moderator design).
    planted, true_effect, tested
        For the power simulation: the simulator parameter that carries the effect, the truth it
        is compared with (``"steering_ame"`` or ``"att_post"``) and the estimate it tests (a term,
        a row label of the result table, or ``"overall"``).
    """

    name: str
    outcome: str
    regressors: tuple[str, ...] = ()
    estimator: str = "fe"
    entity: str = "municipality"
    entity_effects: bool = True
    other_effects: tuple[Effect, ...] = ()
    cluster: str = "municipality"
    inference: str = "clustered"
    effects_label: str = ""
    sample: str = ""
    peer_group: str | None = "county"
    items: str = "established"
    exclude_coloured: bool = True
    oj_year: int = 2019
    planted: str | None = None
    true_effect: str | None = None
    tested: str | None = None

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ParameterError(f"estimator must be one of {ESTIMATORS}; got {self.estimator!r}")
        if self.items not in ("established", "all"):
            raise ParameterError(f"items must be 'established' or 'all'; got {self.items!r}")

    def with_options(self, **changes: Any) -> SteeringDesign:
        """The same design with some fields changed (e.g. ``cluster``, ``peer_group``)."""
        return replace(self, **changes)

    def effects(self) -> dict[str, Any]:
        """Absorbed effects as :func:`ojpanel.designs.steering._common.fit_fe` takes them."""
        return {"entity": self.entity, "entity_effects": self.entity_effects,
                "other_effects": list(self.other_effects)}  # fmt: skip

    def fit(self, frame: pd.DataFrame, regressors: Sequence[str] | None = None, *, label: str | None = None):
        """The design's fixed-effects regression on a long frame (clustered by :attr:`cluster`).

        Returns
        -------
        ojpanel.models.fe_results.FEResults
        """
        if self.estimator != "fe":
            raise ParameterError(f"design {self.name!r} is not a fixed-effects regression ({self.estimator})")
        terms = list(self.regressors if regressors is None else regressors)
        return fit_fe(frame, self.outcome, terms, **self.effects(), cluster=self.cluster, label=label or self.name)

    def fit_logit(self, frame: pd.DataFrame, regressors: Sequence[str] | None = None):
        """The design's logit: regressors, a constant and dummies of :attr:`other_effects`
        (collinear dummies dropped), SEs clustered by :attr:`cluster` (statsmodels).

        Returns
        -------
        tuple
            The statsmodels fit and the design matrix's columns.
        """
        import statsmodels.api as sm

        if self.estimator != "logit":
            raise ParameterError(f"design {self.name!r} is not a logit ({self.estimator})")
        terms = list(self.regressors if regressors is None else regressors)
        dummies = [
            pd.get_dummies(effect_column(frame, e), prefix=e if isinstance(e, str) else "_".join(e),
                           drop_first=True, dtype=float)
            for e in self.other_effects
        ]  # fmt: skip
        X = pd.concat([frame[terms], *dummies], axis=1)
        X = full_rank(sm.add_constant(X, has_constant="add"), ["const", *terms])
        groups = pd.factorize(frame[self.cluster])[0]
        fit = sm.Logit(frame[self.outcome].to_numpy(), X).fit(
            disp=0, cov_type="cluster", cov_kwds={"groups": groups}, maxiter=200)  # fmt: skip
        return fit, list(X.columns)

    def settings(self, frame: pd.DataFrame | None = None, **extra: Any) -> dict[str, Any]:
        """What results report about the design: effects, clustering, sample (and the frame's
        areas and period)."""
        out: dict[str, Any] = {"effects": self.effects_label, "cluster": self.cluster}
        if self.sample:
            out["sample"] = self.sample
        out.update(extra)
        if frame is not None and len(frame):
            out["areas"] = ",".join(sorted(frame["area"].unique()))
            out["period"] = f"{int(frame['year'].min())}-{int(frame['year'].max())}"
        return out


_AT_RISK = dict(outcome="adopt", sample="at risk", planted="steering_effect", true_effect="steering_ame")

#: Red-flag hazard LPM: ``adopt ~ red_prev + municipality + item + area×year``, clustered by
#: municipality, on pairs at risk of the established items.
ADOPTION = SteeringDesign(
    "adoption", regressors=("red_prev",), other_effects=("indicator", ("area", "year")),
    effects_label="municipality, item, area×year", tested="red_prev", **_AT_RISK,
)  # fmt: skip
#: The hazard as a logit with item, area×year and county dummies (municipality dummies would carry
#: the incidental-parameter bias with few years).
ADOPTION_LOGIT = SteeringDesign(
    "adoption", regressors=("red_prev",), estimator="logit", entity_effects=False,
    other_effects=("indicator", ("area", "year"), "county"), effects_label="item, area×year, county (dummies)",
    tested="red_prev", **_AT_RISK,
)  # fmt: skip
#: Steering and benchmarking jointly, one clustered covariance.
COMBINED = SteeringDesign(
    "combined", regressors=("red_prev", "peer_prev"), other_effects=("indicator", ("area", "year")),
    effects_label="municipality, item, area×year", tested="steering (red flag, t-1)", **_AT_RISK,
)  # fmt: skip
#: OJ use as a moderator: ``adopt ~ user×pre + user×post + item×year + county`` (no municipality
#: effects: they would absorb the status).
OJ_USE = SteeringDesign(
    "oj_use", outcome="adopt", regressors=("user_pre", "user_post"), entity_effects=False,
    other_effects=(("indicator", "year"), "county"), effects_label="item×year, county", peer_group=None,
    items="all",
)  # fmt: skip
#: The moderator's designs by ``shocks``: county effects, or users compared with non-users within
#: county × item × year cells.
OJ_USE_SHOCKS: Mapping[str, SteeringDesign] = MappingProxyType({
    "county": OJ_USE,
    "county×item×year": OJ_USE.with_options(other_effects=(("indicator", "year", "county"),),
                                            effects_label="county×item×year"),
})  # fmt: skip
#: Item-introduction group-time ATTs against the established, never-coloured items of the same
#: area; two-way (item, municipality) inference.
EVENT_STUDY = SteeringDesign(
    "event_study", outcome="yes", estimator="cohort", entity_effects=False, inference="item_municipality",
    effects_label="comparison: established items of the same area", peer_group=None, items="all",
    planted="intro_effects", true_effect="att_post", tested="overall",
)  # fmt: skip
#: Naive two-way FE event study: ``yes ~ event-time dummies + item×municipality + area×year``.
TWFE_EVENT_STUDY = SteeringDesign(
    "twfe_event_study", outcome="yes", entity="pair", other_effects=(("area", "year"),),
    effects_label="item×municipality, area×year", peer_group=None, items="all",
)  # fmt: skip

#: Designs the power simulation covers, by the name :func:`steering_power` takes.
POWER_DESIGNS: Mapping[str, SteeringDesign] = MappingProxyType(
    {"adoption": ADOPTION, "event_study": EVENT_STUDY, "combined": COMBINED}
)
