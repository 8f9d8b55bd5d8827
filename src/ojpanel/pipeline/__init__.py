"""Notebooks as tested pipelines: discovery, parameter checks, papermill execution, recorded results."""

from ojpanel.pipeline.parameters import check_parameters, notebook_parameters
from ojpanel.pipeline.record import read_records, record
from ojpanel.pipeline.runner import PipelineError, PipelineResult, discover, plan, run_pipeline

__all__ = [
    "record",
    "read_records",
    "notebook_parameters",
    "check_parameters",
    "discover",
    "plan",
    "run_pipeline",
    "PipelineError",
    "PipelineResult",
]
