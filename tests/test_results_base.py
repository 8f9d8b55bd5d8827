"""One result base: every result class offers summary (a property), str, HTML, tidy and conf_int."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ojpanel.core.results import Result, critical_value

RESULT_CLASSES = [
    "ojpanel.models.fe_results:FEResults",
    "ojpanel.models.fe_results:BatchFEResults",
    "ojpanel.models.fe_results:Comparison",
    "ojpanel.inference.bootstrap:WildBootstrapResult",
    "ojpanel.inference.randomization:PermutationResult",
    "ojpanel.designs.power:PowerResult",
    "ojpanel.designs.steering.power:SteeringPowerResult",
    "ojpanel.designs.steering.transitions:AdoptionResult",
    "ojpanel.designs.steering.event_study:EventStudyResult",
    "ojpanel.designs.steering.moderator:ModeratorResult",
    "ojpanel.designs.steering.combined:CombinedResult",
    "ojpanel.designs.steering.run:SteeringResults",
    "ojpanel.replication.results:RiR2021Result",
    "ojpanel.replication.compare:FidelityReport",
    "ojpanel.replication.choices:ChoiceEvaluation",
    "ojpanel.replication.published:Published",
    "ojpanel.designs.steering.staggered:StaggeredResult",
    "ojpanel.models.bayes.diagnostics:DiagnosticsReport",
    "ojpanel.models.bayes.checks:LooReport",
    "ojpanel.models.bayes.checks:GroupCVResult",
    "ojpanel.models.bayes.compare_fe:FEComparison",
    "ojpanel.models.bayes.sbc:SBCResult",
]

SRC = Path(__file__).resolve().parents[1] / "src" / "ojpanel"


def _summary_members() -> list[tuple[str, ast.FunctionDef]]:
    """Every ``summary`` defined in a class of the package (parsed, so nothing is imported)."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name == "summary":
                        out.append((f"{path.relative_to(SRC.parent)}:{node.name}", item))
    return out


def test_summary_is_a_read_only_text_property_everywhere():
    members = _summary_members()
    assert len(members) >= 20
    wrong = []
    for where, fn in members:
        is_property = any(isinstance(d, ast.Name) and d.id == "property" for d in fn.decorator_list)
        returns_text = isinstance(fn.returns, ast.Name | ast.Constant) and (
            getattr(fn.returns, "id", None) == "str" or getattr(fn.returns, "value", None) == "str"
        )
        takes_self_only = len(fn.args.args) == 1 and not (fn.args.kwonlyargs or fn.args.vararg or fn.args.kwarg)
        if not (is_property and returns_text and takes_self_only):
            wrong.append(where)
    assert not wrong, f"summary must be a @property returning str in {wrong}"


@pytest.mark.parametrize("path", RESULT_CLASSES)
def test_every_result_class_shares_the_base(path):
    module, name = path.split(":")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, Result)
    assert isinstance(cls.summary, property), f"{name}.summary must be a property"
    for member in ("to_frame", "tidy", "conf_int", "_repr_html_", "__str__"):
        assert callable(getattr(cls, member))


def test_base_conf_int_uses_t_with_the_rows_df():
    class Two(Result):
        title = "two"

        def to_frame(self):
            return pd.DataFrame(
                {"term": ["a", "b"], "estimate": [1.0, 2.0], "std_error": [0.5, 0.1], "df": [4, np.inf]}
            )

    ci = Two().conf_int(0.9)
    from scipy import stats

    assert ci.loc["a", "upper"] == pytest.approx(1 + stats.t.ppf(0.95, 4) * 0.5, rel=1e-12)
    assert ci.loc["b", "lower"] == pytest.approx(2 - stats.norm.ppf(0.95) * 0.1, rel=1e-12)
    assert str(Two()).startswith("two\n") and "<table" in Two()._repr_html_()
    assert Two().tidy().equals(Two().to_frame())
    assert critical_value(0.95) == pytest.approx(stats.norm.ppf(0.975), rel=1e-12)


def test_fitted_results_agree_between_one_and_many():
    from ojpanel.models import fit_indicators
    from ojpanel.simulate import simulate_panel

    ds = simulate_panel(n_municipalities=60, n_counties=6, n_indicators=2, seed=1)
    res = fit_indicators(ds["value"], {"lag": ds["value"].shift(year=1)}, cluster="county")
    many = res.conf_int(0.9)
    one = res["SIM001"].conf_int(0.9)
    np.testing.assert_allclose(many.loc[("SIM001", "lag")].to_numpy(), one.loc["lag"].to_numpy())
    assert isinstance(res.summary, str) and isinstance(res["SIM001"].summary, str)


def test_abstract_bases_have_only_concrete_subclasses():
    """Result, RegressionDesign, Convention and CovarianceEstimator are abstract; every subclass in
    the package defines what they leave open (so none fails at instantiation)."""
    import inspect

    from ojpanel.designs.design import RegressionDesign
    from ojpanel.models.covariance import Convention, CovarianceEstimator

    bases = (Result, RegressionDesign, Convention, CovarianceEstimator)
    names = "|".join(b.__name__ for b in bases)
    import re

    for path in sorted(SRC.rglob("*.py")):
        if re.search(rf"^class \w+\((?:[\w.]+, )*(?:{names})\b", path.read_text(encoding="utf-8"), re.M):
            rel = path.relative_to(SRC.parent).with_suffix("")
            importlib.import_module(".".join(rel.parts))

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    found = {sub for base in bases for sub in subclasses(base) if sub.__module__.startswith("ojpanel.")}
    assert len(found) >= 30
    for base in bases:
        assert inspect.isabstract(base), base
        with pytest.raises(TypeError, match="abstract"):
            base()
    abstract = sorted(f"{c.__module__}.{c.__qualname__}" for c in found if inspect.isabstract(c))
    assert not abstract, f"subclasses leaving abstract methods open: {abstract}"
