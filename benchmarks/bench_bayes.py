"""Benchmark: hierarchical Bernoulli-logit on 46,400 observations, converged by the gates.

Panel (synthetic, with known truth): 290 municipalities in 21 counties × 40 yes/no indicators ×
4 years; a binary municipality × year exposure whose effect varies by indicator.

Anchor (issue 6, measured on 2 cores): 84 s with nutpie and 226 s with PyMC's default sampler at
500 + 500 draws, neither converged (county-spread R-hat 1.05 / 1.12, bulk ESS 30 / 16).
Goal: converged by the gates (R-hat ≤ 1.01, bulk and tail ESS ≥ 400 for every parameter, no
divergences) in ≤ 120 s on 2 cores.

What gets there: the linear predictor is built on the municipality × indicator × year grid by
broadcasting (no gathers/scatter-adds over 46,400 observations in the gradient), zero-sum county
effects (the common level belongs to the intercepts), the exposure centred per indicator inside
the model (intercepts and slopes decorrelate), and — because every municipality has 160
observations — the centred parametrisation chosen automatically for the well-informed levels.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_bayes.py [--draws 1300 --tune 700]``.
``--anchor-setup`` runs the non-centred 500 + 500 configuration for comparison.
"""

from __future__ import annotations

import argparse
import time
import warnings

from ojpanel.models.bayes.data import prepare_data
from ojpanel.models.bayes.diagnostics import diagnose
from ojpanel.models.bayes.fit import _compile_nutpie, sample_model
from ojpanel.models.bayes.models import build_model, choose_parametrization
from ojpanel.models.bayes.simulate import simulate_panel

ANCHOR_SECONDS = {"nutpie": 84.0, "pymc": 226.0}
GOAL_SECONDS = 120.0
COUNTY_SIZES = (14,) * 17 + (13,) * 4  # 290 municipalities in 21 counties


def backend_cost(model, repeats: int = 200) -> None:
    """Compile the model's log density and gradient with PyTensor's numba and C backends and time them.

    ojpanel compiles with numba (``COMPILE_KWARGS``); the C backend is what PyTensor used before
    3.0 and what needs a system BLAS, which a pip-only install lacks (PyTensor then warns that it
    "could not link to a BLAS installation"). The check of the C backend's BLAS is printed as is.
    """
    from pytensor.compile.mode import Mode

    ip = model.initial_point()
    outs = [model.logp(), model.dlogp()]
    for name, mode in (("numba (ojpanel)", "NUMBA"), ("C, no BLAS", Mode(linker="cvm", optimizer="o4"))):
        t0 = time.perf_counter()
        f = model.compile_fn(outs, mode=mode, point_fn=True)
        f(ip)
        t1 = time.perf_counter()
        for _ in range(repeats):
            f(ip)
        per = (time.perf_counter() - t1) / repeats * 1e3
        print(f"  PyTensor backend {name:<16} compile {t1 - t0:5.1f} s, log density + gradient {per:6.2f} ms")
    import pytensor

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flags = pytensor.config.blas__ldflags
    said = [str(w.message).splitlines()[0] for w in caught if "BLAS" in str(w.message)]
    print(f"  C backend's BLAS link flags: {flags!r}" + (f" (PyTensor: {said[0]})" if said else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sampler", choices=["nutpie", "pymc"], default="nutpie")
    ap.add_argument("--draws", type=int, default=1300)
    ap.add_argument("--tune", type=int, default=700)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--anchor-setup", action="store_true", help="non-centred, 500 + 500 draws")
    ap.add_argument("--backends", action="store_true", help="only time PyTensor's numba vs C backend")
    a = ap.parse_args()
    ds = simulate_panel("bernoulli", n_groups=21, municipalities_per_group=COUNTY_SIZES, n_indicators=40,
                        n_years=4, seed=2026)
    data = prepare_data(ds, "exposure", likelihood="bernoulli")
    par = "noncentered" if a.anchor_setup else choose_parametrization(data)
    draws, tune = (500, 500) if a.anchor_setup else (a.draws, a.tune)
    print(f"observations: {data.n_obs:,}  municipalities: {len(data.municipalities)}  counties: "
          f"{len(data.groups)}  indicators: {len(data.indicators)}  years: {len(data.years)}")
    print(f"sampler {a.sampler}, {a.chains} chains x ({tune} tune + {draws} draws), parametrisation {par}")
    if a.backends:
        backend_cost(build_model(data, parametrization=par))
        return
    t0 = time.perf_counter()
    model = build_model(data, parametrization=par)
    if a.sampler == "nutpie":
        _compile_nutpie(model)
    t1 = time.perf_counter()
    idata, used = sample_model(model, sampler=a.sampler, draws=draws, tune=tune, chains=a.chains, seed=a.seed)
    t2 = time.perf_counter()
    rep = diagnose(idata)
    total = t2 - t0
    print(f"time: build+compile {t1 - t0:.1f} s, sampling {t2 - t1:.1f} s, total {total:.1f} s")
    print(rep.summary())
    tab = rep.to_frame().set_index("variable")
    for v in ("sigma_group", "sigma_municipality", "tau_beta", "mu_beta"):
        r = tab.loc[v]
        print(f"  {v:<20} R-hat {r['r_hat']:.4f}  bulk ESS {r['ess_bulk']:.0f}  tail ESS {r['ess_tail']:.0f}")
    anchor = ANCHOR_SECONDS[used]
    print(f"ratio vs anchor ({used}, {anchor:.0f} s, not converged): {total / anchor:.2f}x time; "
          f"county-spread bulk ESS {tab.loc['sigma_group', 'ess_bulk']:.0f} vs anchor {30 if used == 'nutpie' else 16}")
    print(f"goal (converged by the gates in <= {GOAL_SECONDS:.0f} s): "
          f"{'MET' if rep.passed and total <= GOAL_SECONDS else 'NOT MET'}")


if __name__ == "__main__":
    main()
