"""Entry point of a model worker process: `python -m embedlab.run.worker JOB RESULT`.

Reads (spec, tasks, settings) from JOB, runs the model, writes its ModelOutcome to RESULT.
Used by `runner.run_model_isolated`; not a user-facing command."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path


def main(job: str, result: str) -> int:
    from embedlab.run.runner import run_model

    spec, tasks, settings = pickle.loads(Path(job).read_bytes())  # noqa: S301 - from our parent
    outcome = run_model(spec, tasks, settings)
    tmp = result + ".tmp"
    Path(tmp).write_bytes(pickle.dumps(outcome))
    os.replace(tmp, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
