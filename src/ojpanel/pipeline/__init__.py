"""Notebooks as tested pipelines: discovery, parameter checks, cached parallel execution, recorded results."""

from ojpanel.pipeline.cache import Freshness
from ojpanel.pipeline.declarations import DeclarationError, read_declaration
from ojpanel.pipeline.parameters import check_parameters, notebook_parameters
from ojpanel.pipeline.record import read_records, record
from ojpanel.pipeline.runner import (
    NotebookRun,
    PipelineError,
    PipelineResult,
    default_jobs,
    discover,
    pipeline_status,
    plan,
    run_pipeline,
)

__all__ = [
    "record",
    "read_records",
    "notebook_parameters",
    "check_parameters",
    "read_declaration",
    "discover",
    "plan",
    "run_pipeline",
    "pipeline_status",
    "default_jobs",
    "Freshness",
    "NotebookRun",
    "PipelineError",
    "PipelineResult",
    "DeclarationError",
]
