"""The simulators (one marker, seeded, every panel contract-valid) and seeded execution."""

from __future__ import annotations

import numpy as np
import pytest

from ojpanel.core.parallel import chunk_sizes, map_seeded, spawn_generators
from ojpanel.errors import ParameterError
from ojpanel.simulate.panel import simulate_panel


def test_simulated_panel_is_labelled_seeded_and_valid():
    from ojpanel import validate

    a = simulate_panel(layout="real", years=range(2016, 2019), n_indicators=2, missing=0.1, seed=3)
    b = simulate_panel(layout="real", years=range(2016, 2019), n_indicators=2, missing=0.1, seed=3)
    assert a.attrs["synthetic"] == 1 and "SYNTHETIC" in a.attrs["description"]
    assert a.identical(b)
    assert a.sizes == {"indicator": 2, "municipality": 290, "year": 3}
    assert 0.05 < float(a["value"].isnull().mean()) < 0.15
    validate(a)


def test_every_simulator_marks_its_output_once_and_passes_validate():
    from ojpanel import harmonise, validate
    from ojpanel.core.synthetic import SYNTHETIC, SYNTHETIC_SOURCE, is_synthetic
    from ojpanel.panel import from_harmonised
    from ojpanel.simulate import (
        simulate_adoption,
        simulate_bayes_panel,
        simulate_checklist,
        simulate_steering,
    )

    raw, truth = simulate_checklist(seed=2, variables=["bou_manual_foraldrastod"])
    bayes = {
        f"simulate_bayes_panel ({lik})": simulate_bayes_panel(
            lik, n_groups=3, municipalities_per_group=(4, 5, 3), n_indicators=2, n_years=3, seed=1
        )
        for lik in ("normal", "binomial", "bernoulli", "ordinal")
    }
    panels = {
        **bayes,
        "simulate_bayes_panel (21 counties)": simulate_bayes_panel(
            "bernoulli", n_groups=21, municipalities_per_group=2, n_indicators=1, n_years=2, seed=1
        ),
        "simulate_adoption": simulate_adoption(1, n_municipalities=60, n_counties=5).panel,
        "simulate_panel (synthetic layout)": simulate_panel(n_municipalities=60, n_counties=6, seed=1),
        "simulate_panel (real layout)": simulate_panel(layout="real", n_indicators=1, seed=1),
        "simulate_steering": simulate_steering(1, n_municipalities=40, n_counties=4).panel,
        "simulate_checklist → harmonise": from_harmonised(harmonise(raw)),
    }
    assert raw.attrs["synthetic"] == SYNTHETIC and truth["synthetic"] == SYNTHETIC
    for name, ds in panels.items():
        assert ds.attrs["synthetic"] == SYNTHETIC, name
        assert is_synthetic(ds) and ds.attrs["description"].startswith("SYNTHETIC"), name
        assert ds.attrs["source"] == SYNTHETIC_SOURCE, name
        validate(ds)


def test_moved_simulators_keep_their_public_names():
    """The Bayesian and staggered-adoption simulators live in ``ojpanel.simulate``; the model and
    design packages expose them under their documented names."""
    from ojpanel.designs import steering
    from ojpanel.models import bayes
    from ojpanel.simulate.adoption import simulate_adoption
    from ojpanel.simulate.bayes import simulate_bayes_panel, truth

    assert bayes.simulate_panel is simulate_bayes_panel and bayes.truth is truth
    assert steering.simulate_adoption is simulate_adoption
    ds = simulate_bayes_panel("binomial", n_groups=2, municipalities_per_group=3, n_indicators=2, seed=2)
    assert truth(ds)["mu_beta"] == 0.4
    assert [m[:2] for m in ds["municipality"].values.tolist()] == ds["county"].values.tolist()
    with pytest.raises(ParameterError):
        simulate_bayes_panel("normal", n_groups=2, municipalities_per_group=101)
    with pytest.raises(ParameterError):
        simulate_adoption(0, n_counties=100)


def test_synthetic_codes_are_allowed_only_on_synthetic_panels():
    from ojpanel import validate
    from ojpanel.errors import PanelValidationError

    ds = simulate_panel(n_municipalities=60, n_counties=6, seed=1)
    validate(ds)
    real = ds.assign_attrs(synthetic=0)
    with pytest.raises(PanelValidationError, match="unknown municipality codes"):
        validate(real)


def test_simulated_peer_effect_follows_the_process():
    """With only a peer effect and noise, y[t] − β·peer[t−1] is pure noise around μ."""
    from ojpanel.peers import lagged, loo_group_mean

    ds = simulate_panel(
        n_municipalities=60,
        n_counties=6,
        years=range(2016, 2019),
        sigma_municipality=0.0,
        sigma_year=0.0,
        sigma_e=1e-9,
        mu=1.0,
        peer_effect=0.5,
        seed=1,
    )
    y = ds["value"]
    p = lagged(loo_group_mean(y, "county"), 1)
    resid = (y - 0.5 * p).sel(year=[2017, 2018])
    np.testing.assert_allclose(resid.values, 1.0, atol=1e-6)
    with pytest.raises(ParameterError):
        simulate_panel(peer_group="region")


def _draw(size, rng, scale=1.0):
    return rng.normal(size=size) * scale


def test_map_seeded_serial_equals_dask_and_chunks_are_fixed():
    distributed = pytest.importorskip("distributed")
    sizes = chunk_sizes(103, 25)
    assert sizes == [25, 25, 25, 25, 3]
    serial = np.concatenate(map_seeded(_draw, sizes, 42, kwargs={"scale": 2.0}))
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as lc,
        distributed.Client(lc) as client,
    ):
        par = np.concatenate(map_seeded(_draw, sizes, 42, client=client, kwargs={"scale": 2.0}))
    np.testing.assert_array_equal(serial, par)
    g = spawn_generators(42, 5)
    np.testing.assert_array_equal(serial[:25], g[0].normal(size=25) * 2.0)
    with pytest.raises(ParameterError):
        chunk_sizes(0, 10)
