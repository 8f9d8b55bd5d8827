"""Romano–Wolf reference p-values from an independent implementation (pyfixest).

Run from the repository root::

    .venv/bin/python tests/reference/make_rwolf_reference.py

Writes ``rwolf_inputs.csv`` (observed t statistics in the first row, then 999 rows of correlated
bootstrap t statistics for 8 hypotheses; seeded) and ``rwolf_reference.csv`` with the adjusted
p-values of ``pyfixest.estimation.post_estimation.multcomp._get_rwolf_pval`` (pyfixest's stepdown
used by ``pyfixest.rwolf``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def main(seed: int = 7) -> None:
    from pyfixest.estimation.post_estimation.multcomp import _get_rwolf_pval

    rng = np.random.default_rng(seed)
    K, B = 8, 999
    corr = 0.5 * np.ones((K, K)) + 0.5 * np.eye(K)
    L = np.linalg.cholesky(corr)
    t_boot = rng.standard_normal((B, K)) @ L.T
    t_obs = np.array([3.1, -2.4, 2.05, 1.7, -1.2, 0.8, 0.3, -2.9])
    frame = pd.DataFrame(np.vstack([t_obs, t_boot]), columns=[f"h{i}" for i in range(K)])
    frame.insert(0, "row", ["observed"] + [f"boot{b}" for b in range(B)])
    frame.to_csv(HERE / "rwolf_inputs.csv", index=False, float_format="%.17g")
    p = _get_rwolf_pval(t_obs.copy(), t_boot.copy())
    pd.DataFrame({"hypothesis": frame.columns[1:], "t_obs": t_obs, "p_rwolf": p}).to_csv(
        HERE / "rwolf_reference.csv", index=False, float_format="%.17g"
    )
    print(p)


if __name__ == "__main__":
    main()
