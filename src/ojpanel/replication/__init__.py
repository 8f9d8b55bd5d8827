"""RiR 2021:17's statistical appendix as one call (:func:`rir2021`, :func:`write_rir2021`) and its
comparison with the audit's published tables (:func:`compare_published`, :func:`load_published`)."""

from __future__ import annotations

from ojpanel.data.ojusers import read_oj_users
from ojpanel.replication.compare import FidelityReport, compare_published
from ojpanel.replication.published import load_published
from ojpanel.replication.results import RiR2021Result
from ojpanel.replication.rir2021 import MODES, rir2021, write_rir2021

__all__ = [
    "rir2021",
    "write_rir2021",
    "RiR2021Result",
    "read_oj_users",
    "MODES",
    "compare_published",
    "load_published",
    "FidelityReport",
]
