"""The trap explorer's models: each loaded once per kernel process (in the kernel, no worker
process) and run as every run is, by the runner (`run.runner.run_model`) through the embedding
cache: a query and candidates scored before come back from the cache, so an edit runs each
model only on a state it has not seen."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from embedlab.evaluation.scoring import cosine_scores
from embedlab.models import ModelSpec
from embedlab.run.cache import cached_runner
from embedlab.run.runner import run_model
from embedlab.types import EncodeTask, RunSettings

# one short timed encode, no throughput pass: the explorer shows scores, not timings
EXPLORE_SETTINGS = RunSettings(
    repeats=1, timing_texts=2, warmup_texts=2, throughput_texts=0, isolate=False, progress=False
)
TASK = "explore"  # the data set name of the explorer's runs


@functools.cache
def _backend(key: str):
    """The backend of a record, loaded once per process (the record's JSON is the key)."""
    from embedlab.models import load_backend

    return load_backend(ModelSpec(**json.loads(key)))


def load_model(spec: ModelSpec):
    """The Encoder or Scorer of `spec`, loaded in this process once and reused."""
    return _backend(json.dumps(spec.to_dict(), sort_keys=True, default=str))


@dataclass
class ModelRuns:
    """The explorer's runs under `settings` (its `cache_dir` the embedding cache): per model,
    how many ran the model (`ran`) and how many the cache answered (`cached`)."""

    settings: RunSettings = EXPLORE_SETTINGS
    ran: dict[str, int] = field(default_factory=dict)
    cached: dict[str, int] = field(default_factory=dict)

    def score(self, spec: ModelSpec, query: str, documents: Sequence[str], instruction: str) -> tuple[np.ndarray, str]:
        """Scores of `documents` for `query` under one model, and the score's name: cosine
        similarity for an encoder, the scorer's own score for a scorer (BM25 indexes just
        these documents, so its IDF is theirs). A failed run raises RuntimeError with its reason."""
        runner = functools.partial(run_model, backend=load_model(spec))
        if self.settings.cache_dir:
            runner = cached_runner(runner, self.settings.cache_dir)
        outcome = runner(spec, [EncodeTask(TASK, [query], list(documents), instruction)], self.settings)
        if outcome.status != "ok":
            raise RuntimeError(outcome.error)
        counts = self.cached if outcome.extra.get("cached") else self.ran
        counts[spec.name] = counts.get(spec.name, 0) + 1
        result = outcome.datasets[TASK]
        if spec.scores_corpus:
            return np.asarray(result.scores, dtype=np.float64)[0], spec.score_name
        return cosine_scores(result.query_embeddings, result.doc_embeddings).astype(np.float64)[0], "cosine similarity"
