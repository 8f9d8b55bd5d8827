"""Reference values for ojpanel's fixed-effects standard errors, from statsmodels and pyfixest.

Run from the repository root to regenerate the CSV files next to this script::

    .venv/bin/python tests/reference/make_fe_reference.py

``fe_reference_data.csv`` is a seeded synthetic, unbalanced panel (60 entities in 8 counties,
6 years, 30 values missing). ``fe_reference_values.csv`` holds, per case, the estimate, standard
error and p-value of each term from

* statsmodels OLS with explicit entity and year dummies (``cov_type`` nonrobust, HC1, cluster with
  ``use_correction=True``; two-way clusters via a 2-column ``groups``), and
* pyfixest ``feols("y ~ x + z | municipality + year")`` with its default small-sample correction
  (``ssc(k_adj=True, k_fixef="nonnested", G_adj=True, G_df="min")``; iid, hetero, CRV1, CRV3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def make_data(seed: int = 20240611) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_ent, n_t = 60, 6
    df = pd.DataFrame(
        {
            "municipality": np.repeat([f"m{i:03d}" for i in range(n_ent)], n_t),
            "year": np.tile(np.arange(2015, 2015 + n_t), n_ent),
        }
    )
    county = rng.integers(0, 8, n_ent)
    df["county"] = np.repeat([f"c{c}" for c in county], n_t)
    df["x"] = rng.normal(size=len(df)) + 0.3 * np.repeat(rng.normal(size=n_ent), n_t)
    df["z"] = rng.normal(size=len(df))
    shock = rng.normal(size=(8, n_t))[np.repeat(county, n_t), np.tile(np.arange(n_t), n_ent)]
    df["y"] = (
        0.5 * df["x"]
        - 0.2 * df["z"]
        + np.repeat(rng.normal(size=n_ent), n_t)
        + shock
        + rng.normal(size=len(df))
    )
    df.loc[rng.choice(len(df), 30, replace=False), "y"] = np.nan
    return df


def statsmodels_rows(df: pd.DataFrame) -> list[dict]:
    import statsmodels.api as sm

    d = df.dropna().reset_index(drop=True)
    dummies = pd.get_dummies(d[["municipality", "year"]].astype(str), drop_first=False, dtype=float)
    # drop one year dummy: entity dummies span the constant
    dummies = dummies.drop(columns=[c for c in dummies.columns if c.startswith("year_")][0])
    X = pd.concat([d[["x", "z"]], dummies], axis=1)
    mod = sm.OLS(d["y"], X)
    cases = {
        "unadjusted": mod.fit(),
        "robust": mod.fit(cov_type="HC1"),
        "clustered:municipality": mod.fit(
            cov_type="cluster", cov_kwds={"groups": pd.factorize(d["municipality"])[0]}
        ),
        "clustered:county": mod.fit(
            cov_type="cluster", cov_kwds={"groups": pd.factorize(d["county"])[0]}
        ),
        "twoway:municipality+year": mod.fit(
            cov_type="cluster",
            cov_kwds={
                "groups": np.column_stack(
                    [pd.factorize(d["municipality"])[0], pd.factorize(d["year"])[0]]
                )
            },
        ),
    }
    rows = []
    for case, r in cases.items():
        for term in ("x", "z"):
            rows.append(
                {
                    "package": "statsmodels",
                    "case": case,
                    "term": term,
                    "estimate": r.params[term],
                    "std_error": r.bse[term],
                    "p_value": r.pvalues[term],
                }
            )
    return rows


def pyfixest_rows(df: pd.DataFrame) -> list[dict]:
    import pyfixest as pf

    d = df.dropna().reset_index(drop=True)
    cases = {
        "unadjusted": ("y ~ x + z | municipality + year", "iid"),
        "robust": ("y ~ x + z | municipality + year", "hetero"),
        "clustered:municipality": ("y ~ x + z | municipality + year", {"CRV1": "municipality"}),
        "clustered:county": ("y ~ x + z | municipality + year", {"CRV1": "county"}),
        "twoway:municipality+year": (
            "y ~ x + z | municipality + year",
            {"CRV1": "municipality+year"},
        ),
        "crv3:county|entity-only": ("y ~ x + z | municipality", {"CRV3": "county"}),
        "clustered:county|entity-only": ("y ~ x + z | municipality", {"CRV1": "county"}),
    }
    rows = []
    for case, (fml, vcov) in cases.items():
        r = pf.feols(fml, data=d, vcov=vcov)
        tid = r.tidy()
        for term in ("x", "z"):
            rows.append(
                {
                    "package": "pyfixest",
                    "case": case,
                    "term": term,
                    "estimate": tid.loc[term, "Estimate"],
                    "std_error": tid.loc[term, "Std. Error"],
                    "p_value": tid.loc[term, "Pr(>|t|)"],
                }
            )
    return rows


def main() -> None:
    df = make_data()
    df.to_csv(HERE / "fe_reference_data.csv", index=False)
    out = pd.DataFrame(statsmodels_rows(df) + pyfixest_rows(df))
    out.to_csv(HERE / "fe_reference_values.csv", index=False, float_format="%.15g")
    print(out.to_string())


if __name__ == "__main__":
    main()
