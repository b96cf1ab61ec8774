"""One launcher for work that must run in a fresh interpreter (a model run, a backend check):
`run_in_worker(function, args)` pickles the call to `python -m embedlab.run.worker JOB RESULT`,
which runs it and pickles back what it returned. A crash of that process (killed, out of
memory, segfault) or a run past the timeout comes back as an error with the tail of the
worker's stderr, never as an exception or a hang; the worker's whole session (engine
processes it started included) is killed when it ends. Pickle only crosses between this
process and its own child, never a file kept on disk. Not a user-facing command."""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STDERR_TAIL_LINES = 12


@dataclass(frozen=True)
class WorkerExit:
    """What came back from a worker: `value` (what the function returned; None when it did
    not return), `error` ("" when it did: else why not, timeout or crash) and `stderr` (the
    worker's last 64 KiB of stderr)."""

    value: Any
    error: str
    stderr: str


def stderr_tail(text: str, lines: int = STDERR_TAIL_LINES, limit: int = 600) -> str:
    """The last `lines` lines of a worker's stderr as one line; a progress bar redrawn with
    carriage returns counts as its last state."""
    kept = []
    for line in text.split("\n"):
        states = [s for s in line.split("\r") if s.strip()]
        if states:
            kept.append(" ".join(states[-1].split()))
    return " | ".join(kept[-lines:])[-limit:]


def stop_session(pid: int) -> None:
    """Kill what is left of a worker's own session (started with start_new_session, so its
    process group id is its pid): the worker and any engine process it started."""
    import signal

    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_in_worker(
    function: Callable[..., Any], args: Sequence[Any], timeout_s: float | None, echo: bool = True
) -> WorkerExit:
    """`function(*args)` in a fresh interpreter (a module-level function: it is pickled by
    name). With `echo` the worker's stderr (progress, engine logs) is passed through as it
    comes. Works from scripts, notebooks and stdin alike (no `__main__` guard needed)."""
    import codecs
    import collections
    import subprocess
    import tempfile
    import threading

    with tempfile.TemporaryDirectory(prefix="embedlab-worker-") as tmp:
        job, result = Path(tmp) / "job.pkl", Path(tmp) / "result.pkl"
        job.write_bytes(pickle.dumps((function, tuple(args))))
        proc = subprocess.Popen(
            [sys.executable, "-m", "embedlab.run.worker", str(job), str(result)],
            stdin=subprocess.DEVNULL,
            stdout=None if echo else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        tail: collections.deque[bytes] = collections.deque(maxlen=64)  # the last 64 KiB at most

        def pump() -> None:
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            while chunk := os.read(proc.stderr.fileno(), 1024):
                tail.append(chunk)
                if not echo:
                    continue
                try:
                    sys.stderr.write(decoder.decode(chunk))
                    sys.stderr.flush()
                except (OSError, ValueError):  # a closed or odd stderr must not stop the pump
                    pass

        reader = threading.Thread(target=pump, name="embedlab-worker-stderr", daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop_session(proc.pid)
            proc.wait()
        except BaseException:
            stop_session(proc.pid)
            proc.wait()
            raise
        stop_session(proc.pid)  # engine processes the worker may have left behind
        reader.join(timeout=5)
        stderr = b"".join(tail).decode("utf-8", errors="replace")
        if timed_out:
            return WorkerExit(None, f"worker timed out after {timeout_s:g} s and was killed", stderr)
        if proc.returncode != 0 or not result.exists():
            how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
            return WorkerExit(None, f"worker process crashed ({how})", stderr)
        return WorkerExit(pickle.loads(result.read_bytes()), "", stderr)  # trusted: written by our own child


def main(job: str, result: str) -> int:
    """The worker: run the pickled call in JOB, write what it returned to RESULT."""
    function, args = pickle.loads(Path(job).read_bytes())  # trusted: from our parent
    value = function(*args)
    tmp = result + ".tmp"
    Path(tmp).write_bytes(pickle.dumps(value))
    os.replace(tmp, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
