"""Benchmark: time to a converged hierarchical fit, side by side with the samplers' defaults.

Case 1 (the issue's benchmark model): hierarchical Bernoulli logit on 46,400 observations — 290
municipalities in 21 counties × 40 yes/no indicators × 4 years, a binary municipality × year
exposure whose effect varies by indicator (synthetic, known truth). Three runs on the same model:

* ``ojpanel``: what :func:`ojpanel.models.bayes.fit` does end to end (build, compile, sample,
  pointwise log-likelihood, convergence gates) with the settings given here;
* ``nutpie defaults``: ``nutpie.sample(compile_pymc_model(model))`` with nutpie's own defaults;
* ``PyMC defaults``: ``pm.sample()`` with PyMC's defaults (PyMC 6 picks its NUTS backend itself;
  the one it used is printed); ``--pymc-nuts`` adds PyMC's own NUTS (``nuts_sampler="pymc"``).

Each row: wall time (build + compile, sampling, the rest), the slowest parameter's bulk ESS, ESS
per second of wall time on that parameter, the ratio to ojpanel's ESS/s, and whether the gates
(R-hat ≤ 1.01, bulk and tail ESS ≥ 400 for every parameter, no divergences) pass.
Goal: ojpanel converged by the gates in ≤ 60 s on 2 cores (issue 19; 126.9 s before).

Case 2 (``--binomial``): shares with denominators on the real structure (290 municipalities in 21
counties × 30 indicators × 4 years, 5–574 units per cell), ``fit()`` end to end with its defaults,
which failed the gates before the municipality level was identified (max R-hat 1.086). Measured:
135.9 s end to end (125 s sampling with compilation, 9.5 s log-likelihood), gates PASSED (max R-hat
1.0098, min bulk ESS 4014, min tail ESS 1399).

``--backends`` times one log density + gradient of the case-1 model with PyTensor's numba backend
(what ojpanel compiles with) and the C backend without BLAS (PyTensor's "could not link to a BLAS
installation" warning on pip installs).

Timings depend on load: the script prints the 1-minute load average before and after each run.

Measured on a quiet 2-core machine, defaults 500 + 1500 at target acceptance 0.8: ojpanel fit()
50.9 s end to end (10.2 s build and compile, 33.0 s sampling, 7.7 s pointwise log-likelihood and
gates), gates PASSED (max R-hat 1.007, slowest bulk ESS 3077 on tau_beta, county spread 6216);
in the same run nutpie's defaults 30.3 s (no log-likelihood) PASSED (1.009) and ``pm.sample()``
(PyMC 6 chose nutpie) 30.1 s FAILED R-hat (1.011). What made it: the municipality deviations
sampled as within-county contrasts and the intercepts at the average year (no unidentified or
ridge directions), and a logit density with one exponential per observation (log density and
gradient 2.5 -> 1.2 ms at points spread around the initial one). A target acceptance of 0.65
took 7 instead of 15 gradients per draw but gave half the ESS per draw (44.7 s with 2000 draws,
no gain in ESS per second), so the default stays 0.8. Before: 81.8 s, 126.9 s in the issue.
Run: ``.venv/bin/python benchmarks/bench_bayes.py [--binomial] [--backends]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import pymc as pm

from ojpanel.models.bayes.data import prepare_data
from ojpanel.models.bayes.diagnostics import diagnose, gated_variables
from ojpanel.models.bayes.fit import (
    COMPILE_KWARGS,
    DEFAULT_DRAWS,
    DEFAULT_TUNE,
    compile_nutpie,
    fit,
)
from ojpanel.models.bayes.models import build_model
from ojpanel.simulate.bayes import simulate_bayes_panel

GOAL_SECONDS = 60.0
BEFORE_SECONDS = 126.9  # issue 19: converged in 126.9 s (14 s build and compile, 113 s sampling)
COUNTY_SIZES = (14,) * 17 + (13,) * 4  # 290 municipalities in 21 counties


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _row(label: str, t_build: float, t_sample: float, t_rest: float, idata) -> dict:
    # the quantities fit()'s gates check, for every run alike
    rep = diagnose(idata, gated_variables(idata))
    tab = rep.to_frame().set_index("variable")
    slow = tab["ess_bulk"].idxmin()
    total = t_build + t_sample + t_rest
    return {"label": label, "build": t_build, "sample": t_sample, "rest": t_rest, "total": total,
            "slowest": slow, "ess": float(tab.loc[slow, "ess_bulk"]), "ess_s": float(tab.loc[slow, "ess_bulk"]) / total,
            "passed": rep.passed, "rhat": rep.max_rhat, "div": rep.n_divergences, "failures": rep.failures,
            "sigma_group_ess": float(tab.loc["sigma_group", "ess_bulk"]) if "sigma_group" in tab.index else np.nan}


def _print_rows(rows: list[dict]) -> None:
    ref = rows[0]["ess_s"]
    print(f"{'run':<34}{'build+compile':>14}{'sampling':>10}{'rest':>7}{'total':>8}  {'slowest parameter':<26}"
          f"{'bulk ESS':>9}{'ESS/s':>8}{'ratio':>7}  gates (max R-hat, divergences)")
    for r in rows:
        print(f"{r['label']:<34}{r['build']:>13.1f}s{r['sample']:>9.1f}s{r['rest']:>6.1f}s{r['total']:>7.1f}s  "
              f"{r['slowest']:<26}{r['ess']:>9.0f}{r['ess_s']:>8.1f}{r['ess_s'] / ref:>6.2f}x  "
              f"{'PASS' if r['passed'] else 'FAIL'} ({r['rhat']:.3f}, {r['div']})")


def run_ojpanel(data, a) -> dict:
    t0 = time.perf_counter()
    model = build_model(data)
    compile_nutpie(model)
    t1 = time.perf_counter()
    idata = fit(data, model=model, draws=a.draws, tune=a.tune, chains=2, seed=a.seed, adaptation=a.adaptation,
                diagnostics="flag", log_likelihood=not a.no_log_likelihood)
    t2 = time.perf_counter()
    # fit() records its stages: sampling, then pointwise log-likelihood and gates ("rest")
    sampling = json.loads(idata.attrs["timing_seconds"])["sampling"]
    ll = "" if a.no_log_likelihood else ", log-lik"
    return _row(f"ojpanel fit() ({a.tune}+{a.draws}, {a.adaptation}{ll})", t1 - t0, sampling, t2 - t1 - sampling, idata)


def run_nutpie_defaults(data, a) -> dict:
    import nutpie

    t0 = time.perf_counter()
    model = build_model(data)
    compiled = nutpie.compile_pymc_model(model)
    t1 = time.perf_counter()
    idata = nutpie.sample(compiled, chains=2, cores=2, seed=a.seed, progress_bar=False)
    t2 = time.perf_counter()
    post = idata["posterior"].to_dataset()
    idata["posterior"] = post.drop_vars([v for v in post.data_vars if str(v).endswith("__")])
    return _row("nutpie defaults (300+1000, diag)", t1 - t0, t2 - t1, 0.0, idata)


def run_pymc_defaults(data, a, nuts_sampler: str | None = None) -> dict:
    t0 = time.perf_counter()
    model = build_model(data)
    t1 = time.perf_counter()
    kw = {} if nuts_sampler is None else {"nuts_sampler": nuts_sampler, "compile_kwargs": dict(COMPILE_KWARGS)}
    with model:
        idata = pm.sample(chains=2, cores=2, random_seed=a.seed, progressbar=False, compute_convergence_checks=False,
                          **kw)
    t2 = time.perf_counter()
    label = "PyMC defaults (pm.sample())" if nuts_sampler is None else f"PyMC NUTS (nuts_sampler={nuts_sampler!r})"
    # compilation happens inside pm.sample: reported with the sampling time
    return _row(label, t1 - t0, t2 - t1, 0.0, idata)


def backend_cost(model, repeats: int = 200) -> None:
    """Compile the model's log density and gradient with PyTensor's numba and C backends and time them.

    ojpanel compiles with numba (``COMPILE_KWARGS``); the C backend is what PyTensor used before
    3.0 and what needs a system BLAS, which a pip-only install lacks (PyTensor then warns that it
    "could not link to a BLAS installation"). The check of the C backend's BLAS is printed as is.
    """
    import pytensor
    from pytensor.compile.mode import Mode

    ip = model.initial_point()
    outs = [model.logp(), model.dlogp()]
    said: list[str] = []
    for name, mode in (("numba (ojpanel)", "NUMBA"), ("C, no BLAS", Mode(linker="cvm", optimizer="o4"))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            f = model.compile_fn(outs, mode=mode, point_fn=True)
            f(ip)
            t1 = time.perf_counter()
        said += [f"{name}: {str(w.message).splitlines()[0]}" for w in caught if "BLAS" in str(w.message)]
        for _ in range(repeats):
            f(ip)
        per = (time.perf_counter() - t1) / repeats * 1e3
        print(f"  PyTensor backend {name:<16} compile {t1 - t0:5.1f} s, log density + gradient {per:6.2f} ms")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flags = pytensor.config.blas__ldflags
    said += [f"BLAS check: {str(w.message).splitlines()[0]}" for w in caught if "BLAS" in str(w.message)]
    # what the C backend links to for BLAS operations (the model itself has none: its municipality
    # deviations use segment sums)
    print(f"  C backend's BLAS link flags: {flags!r}; PyTensor warned: {said or 'nothing (compiled earlier and cached)'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=DEFAULT_DRAWS)
    ap.add_argument("--tune", type=int, default=DEFAULT_TUNE)
    ap.add_argument("--adaptation", choices=["diag", "low_rank"], default="diag")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only-ojpanel", action="store_true", help="skip the comparison runs")
    ap.add_argument("--no-log-likelihood", action="store_true", help="fit() without the pointwise log-likelihood")
    ap.add_argument("--pymc-nuts", action="store_true", help="also run PyMC's own NUTS (slow)")
    ap.add_argument("--binomial", action="store_true", help="also the shares-with-denominators case")
    ap.add_argument("--backends", action="store_true", help="only time PyTensor's numba vs C backend")
    a = ap.parse_args()
    print(f"cores: {os.cpu_count()}; 1-minute load average at start: {_load()}")
    ds = simulate_bayes_panel("bernoulli", n_groups=21, municipalities_per_group=COUNTY_SIZES, n_indicators=40,
                        n_years=4, seed=2026)
    data = prepare_data(ds, "exposure", likelihood="bernoulli")
    print(f"case 1: Bernoulli logit, {data.n_obs:,} observations ({len(data.municipalities)} municipalities in "
          f"{len(data.groups)} counties x {len(data.indicators)} indicators x {len(data.years)} years)")
    if a.backends:
        backend_cost(build_model(data))
        return
    rows = [run_ojpanel(data, a)]
    print(f"  ojpanel done (load {_load()})")
    if not a.only_ojpanel:
        rows.append(run_nutpie_defaults(data, a))
        print(f"  nutpie defaults done (load {_load()})")
        rows.append(run_pymc_defaults(data, a))
        print(f"  PyMC defaults done (load {_load()})")
        if a.pymc_nuts:
            rows.append(run_pymc_defaults(data, a, nuts_sampler="pymc"))
            print(f"  PyMC NUTS done (load {_load()})")
    _print_rows(rows)
    r = rows[0]
    for f in r["failures"]:
        print(f"  ojpanel gate failure: {f}")
    print(f"ojpanel: {r['total']:.1f} s ({BEFORE_SECONDS / r['total']:.2f}x faster than the {BEFORE_SECONDS} s before); "
          f"county-spread bulk ESS {r['sigma_group_ess']:.0f}")
    met = r["passed"] and r["total"] <= GOAL_SECONDS
    print(f"{'converged in <= 60 s' if met else 'NOT converged in <= 60 s'} "
          f"(gates {'passed' if r['passed'] else 'FAILED'}, {r['total']:.1f} s)")
    if a.binomial:
        bds = simulate_bayes_panel("binomial", n_groups=21, municipalities_per_group=COUNTY_SIZES, n_indicators=30,
                             n_years=4, n_trials_range=(5, 574), seed=2026)
        bdata = prepare_data(bds, "exposure", likelihood="binomial")
        print(f"case 2: binomial shares, {bdata.n_obs:,} observations, {int(bdata.n_trials.min())}-"
              f"{int(bdata.n_trials.max())} units per cell; fit() with its defaults, end to end")
        t0 = time.perf_counter()
        idata = fit(bdata, seed=a.seed, diagnostics="flag")
        t1 = time.perf_counter()
        rep = diagnose(idata, gated_variables(idata))
        print(f"  fit(): {t1 - t0:.1f} s end to end (stages {idata.attrs['timing_seconds']}; load {_load()}), "
              f"parametrisation {idata.attrs['parametrization']}")
        print("  " + rep.summary.replace("\n", "\n  "))


if __name__ == "__main__":
    main()
