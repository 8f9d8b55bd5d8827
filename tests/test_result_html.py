"""Every result a notebook shows renders as HTML, with the numbers a reader needs.

Two checks: every public result class of the package (the subclasses of the result base and the
classes named ``…Result``, ``…Report``, ``…Comparison`` …) has ``_repr_html_``; and for the results
the notebooks show, the HTML holds the key numbers: the coefficient and its standard error of a
fixed-effects fit, the MDE of a power simulation, the p-value and interval of a bootstrap, R-hat
and ESS of the Bayesian convergence gates.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import numpy as np
import pandas as pd
import pytest

import ojpanel
from ojpanel.core.results import Result

_NAMES = re.compile(r"(Result|Results|Report|Comparison|Evaluation|Simulation|Components|Table)$")
# parts of the package without result classes, or that only a command line imports
_SKIP = ("ojpanel.cli", "ojpanel.__main__")
# intermediates of the fitting core that no reader is shown: stacked covariance matrices
_NOT_SHOWN = {"CovarianceResult"}


def _public_result_classes() -> list[type]:
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(ojpanel.__path__, "ojpanel."):
        if info.name.startswith(_SKIP):
            continue
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != info.name or name not in getattr(module, "__all__", ()):
                continue
            if name in _NOT_SHOWN:
                continue
            if (issubclass(cls, Result) and cls is not Result) or _NAMES.search(name):
                found[f"{info.name}:{name}"] = cls
    return [found[k] for k in sorted(found)]


_NUMBER = re.compile(r"[-−]?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?")


def shows(page: str, value: float) -> bool:
    """Whether ``page`` shows ``value`` rounded to the digits it prints (any one occurrence)."""
    for token in _NUMBER.findall(page):
        text = token.replace("−", "-").replace(",", ".")
        mantissa = re.split(r"[eE]", text)[0]
        digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
        scale = 10 ** int(re.split(r"[eE]", text)[1]) if re.search(r"[eE]", text) else 1
        if abs(float(text) - value) <= 0.51 * 10 ** -digits * scale + 1e-12:
            return True
    return False


def test_every_public_result_class_renders_html():
    classes = _public_result_classes()
    names = {c.__name__ for c in classes}
    # the list is the package's, not a hand-kept one: it must at least hold these
    assert {"FEResults", "PowerResult", "WildBootstrapResult", "DiagnosticsReport", "SBCResult",
            "FidelityReport", "SteeringResults", "AuditTable", "VarianceComponents"} <= names
    missing = [c.__name__ for c in classes if not callable(getattr(c, "_repr_html_", None))]
    assert missing == [], f"result classes without _repr_html_: {missing}"


def test_shows_reads_rounded_numbers():
    assert shows("<td>0.1235</td>", 0.123456) and not shows("<td>0.1240</td>", 0.123456)
    assert shows("MDE: 1.5e-03", 0.0015) and shows("−2.50", -2.5)


@pytest.fixture(scope="module")
def fe_fit():
    from ojpanel.models import fit_indicators
    from ojpanel.simulate import simulate_panel

    ds = simulate_panel(n_municipalities=60, n_counties=6, n_indicators=2, seed=1)
    return fit_indicators(ds["value"], {"lag": ds["value"].shift(year=1)}, cluster="county")


def test_fixed_effects_html_shows_coefficient_and_standard_error(fe_fit):
    from ojpanel.models.fe_results import compare

    one = fe_fit["SIM001"]
    for res in (one, fe_fit, compare({"a": one, "b": fe_fit["SIM000"]})):
        page = res._repr_html_()
        assert "<table" in page
        assert shows(page, float(one.params["lag"])), type(res).__name__
        assert shows(page, float(one.std_errors["lag"])), type(res).__name__


def test_power_html_shows_the_mde_and_the_size():
    from ojpanel.designs.power import power
    from ojpanel.simulate.panel import simulate_panel

    ds = simulate_panel(layout="real", years=range(2016, 2020), seed=6)
    res = power(ds, design="users", effects=[0.0, 0.5, 1.0], n_sims=30, chunk_size=10, seed=3)
    page = res._repr_html_()
    assert "MDE" in page and np.isfinite(res.mde) and shows(page, res.mde)
    assert res.size is not None and shows(page, res.size)
    assert "<table" in page and shows(page, float(res.table["power"].iloc[-1]))
    assert "<table" in res.components._repr_html_()


def test_bootstrap_and_permutation_html_show_p_values_and_intervals():
    from ojpanel.inference.bootstrap import wild_cluster_bootstrap
    from ojpanel.inference.randomization import permutation_test

    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(12), 6)
    x = rng.normal(size=g.size)
    y = 0.4 * x + rng.normal(size=12)[g] + rng.normal(size=g.size)
    boot = wild_cluster_bootstrap(np.column_stack([np.ones_like(x), x]), y, g, term=1, n_draws=99, seed=1,
                                  enumerate=False)
    page = boot._repr_html_()
    assert shows(page, boot.estimate) and shows(page, boot.p_value)
    assert all(shows(page, v) for v in boot.interval)
    labels = np.repeat([0, 1], 10)
    values = rng.normal(size=20) + labels
    perm = permutation_test(lambda lab: values[lab == 1].mean() - values[lab == 0].mean(), labels,
                            n_permutations=99, seed=2)
    frame = perm.to_frame()
    assert shows(perm._repr_html_(), float(frame["p_value"].iloc[0]))


def test_bayesian_diagnostics_html_shows_rhat_and_ess():
    from ojpanel.models.bayes.compare_fe import FEComparison
    from ojpanel.models.bayes.diagnostics import DiagnosticsReport

    table = pd.DataFrame({"variable": ["mu_beta", "tau_beta"], "r_hat": [1.0031, 1.0122],
                          "ess_bulk": [812.0, 377.0], "ess_tail": [655.0, 901.0]})
    rep = DiagnosticsReport(table, n_divergences=2, n_chains=2, n_draws=500, rhat_max=1.01, ess_min=400,
                            max_divergences=0)
    page = rep._repr_html_()
    assert "FAILED" in page and "R-hat" in page and "ESS" in page
    assert shows(page, 1.0122) and shows(page, 377) and shows(page, 655)
    cmp = FEComparison(pd.DataFrame({"bayes_mean": [0.123], "fe_estimate": [0.119]}, index=["pooled"]),
                       "normal", True, 0.9)
    page = cmp._repr_html_()
    assert shows(page, 0.123) and shows(page, 0.119)


def test_audit_tables_render_with_their_caption_and_notes():
    from ojpanel.replication.tables import AuditTable

    cells = pd.DataFrame({"Andel": ["12,3 %"]}, index=pd.MultiIndex.from_tuples([("Grupp", "Rad")]))
    page = AuditTable("D_x", "Tabell D", cells, ["* p < 0,05"])._repr_html_()
    assert "Tabell D" in page and "12,3 %" in page and "p &lt; 0,05" in page
