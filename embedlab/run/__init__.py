"""Stage 3, run: each model in its own worker process (runner, worker), measured (probe:
host RSS, GPU memory, timings), its embeddings kept in the content-addressed cache (cache),
and `embedlab check` for a model on the user's own machine (check)."""

from embedlab.run.runner import model_runner, run_model, run_model_isolated
from embedlab.types import DatasetOutcome, EncodeTask, ModelOutcome, RunSettings

__all__ = [
    "DatasetOutcome",
    "EncodeTask",
    "ModelOutcome",
    "RunSettings",
    "model_runner",
    "run_model",
    "run_model_isolated",
]
