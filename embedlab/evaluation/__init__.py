"""Stage 4, evaluation: scores and per-query rankings (scoring), metrics as pure functions
(metrics), intervals and paired tests (stats), the Report of a run (results) and the
evaluation of models on data sets end to end (pipeline.evaluate)."""

from embedlab.evaluation.pipeline import evaluate
from embedlab.evaluation.results import Report

__all__ = ["Report", "evaluate"]
