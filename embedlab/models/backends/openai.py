"""Served models over an OpenAI-compatible embeddings API (`vllm serve`, TEI, Xinference,
Ollama, a cloud endpoint, a gateway): `POST {base_url}/embeddings` through httpx.

The record's prompts are applied here, client-side (`spec.format`), so a served model gets
exactly the strings the in-process backends give it. Texts go in batches of `batch_size`,
at most `max_concurrency` requests at a time; a 429, a 5xx, a timeout, a dropped connection
or an unreadable body is retried with exponential backoff and full jitter (a `Retry-After`
header is honoured up to `max_retry_after_s`), other errors and every malformed answer
(wrong shape, count, order, width, non-finite values) raise `ServedModelError` with the
reason, which the runner turns into a failed row. Every request has a total deadline
(`timeout_s`) over connect, headers and body together (httpx's own timeouts are per phase),
so nothing hangs.

`GET {base_url}/models` is optional: gateways that answer 404, 405 or 501 are served all the
same, and the served weights are then identified by a fingerprint of the embedding of a
fixed canary text (`served_identity`), so another model behind the same name is another
cache key.

Latency and throughput are measured at the client; GPU memory is the server's, so none is
reported. The API key is read from the environment variable named by `api_key_env` and
lives only in the HTTP client's headers: never in the record, results, logs or errors."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from embedlab.errors import BackendUnavailableError, ConfigError
from embedlab.models.backends import BaseEncoder, l2_normalize, truncate
from embedlab.models.resolve import check_served
from embedlab.models.spec import Kind, ModelSpec

DEFAULTS: dict[str, Any] = {
    "batch_size": 64,
    "max_concurrency": 4,
    "timeout_s": 60.0,
    "max_retries": 5,
    "backoff_s": 0.5,
    "max_backoff_s": 30.0,
    "max_retry_after_s": 120.0,
    "send_dimensions": True,
    "encoding_format": "float",
}
RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)
NO_MODEL_LIST = (404, 405, 501)  # gateways and proxies without GET /models
SERVED_NOTE = "served: GPU memory is the server's"
# Fields of a /v1/models entry that identify the weights (vLLM's `created` is the time of
# the request, so it is left out).
MODEL_CARD_FIELDS = ("id", "object", "owned_by", "root", "parent", "max_model_len")
# Embedded raw (no prompt) to identify the weights behind a server without /models.
CANARY_TEXT = "embedlab canary: 这句话用来识别服务端的模型权重。"
CANARY_DECIMALS = 3  # the canary embedding (unit length) is rounded to this before hashing


class ServedModelError(RuntimeError):
    """A served model answered wrongly or not at all (after the retries that made sense)."""


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not: `retry_after` in seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def served_options(spec: ModelSpec) -> dict[str, Any]:
    """The validated options of a served model, with defaults filled in."""
    check_served(spec)
    return {**DEFAULTS, **{k: v for k, v in spec.options.items() if v is not None}}


def server_host(base_url: str) -> str:
    """scheme://host:port of `base_url` (what identifies the server; never credentials)."""
    url = urlsplit(base_url)
    port = url.port or (443 if url.scheme == "https" else 80)
    return f"{url.scheme}://{url.hostname}:{port}"


def _api_key(spec: ModelSpec, env_name: str | None) -> str | None:
    if env_name is None:
        return None
    key = os.environ.get(env_name)
    if not key:
        raise ConfigError(
            f"model {spec.name!r}: field 'api_key_env' names environment variable {env_name!r}, which is not set or "
            "empty"
        )
    return key


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(body: bytes, key: str | None = None, limit: int = 300) -> str:
    """The server's error message from a body ({"error": {"message"}}, {"message"}, text),
    shortened, with the API key blanked should the server echo it."""
    text = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            err = data.get("error", data)
            text = str(err.get("message", err) if isinstance(err, dict) else err)
    except ValueError:
        pass
    if key:
        text = text.replace(key, "[api key]")
    return " ".join(text.split())[:limit]


class ServedClient:
    """HTTP to one served model: `call` retries where a retry may help, waits out a
    `Retry-After` up to `max_retry_after_s`, and bounds each attempt by a total deadline of
    `timeout_s` across connect, headers and body. The attempt runs in a thread of its own
    and the caller stops waiting at the deadline; the abandoned attempt stops at its next
    body chunk or at httpx's per-phase timeout (also `timeout_s`)."""

    def __init__(self, spec: ModelSpec) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise BackendUnavailableError("backend 'openai' needs httpx: pip install 'embedlab[openai]'") from exc
        self.spec = spec
        self.opts = served_options(spec)
        self.base_url = self.opts["base_url"].rstrip("/")
        key = _api_key(spec, self.opts.get("api_key_env"))
        self.blank = lambda body: _error_text(body, key)  # the key stays in this closure and the client's headers
        self._httpx = httpx
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=float(self.opts["timeout_s"]),
            limits=httpx.Limits(max_connections=int(self.opts["max_concurrency"])),
        )
        self.lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "server_prompt_tokens": 0, "request_s": 0.0}

    def close(self) -> None:
        self._http.close()

    def call(
        self, method: str, path: str, payload: dict[str, Any] | None, parse: Callable[[int, Any, bytes], Any]
    ) -> Any:
        """`parse(status, headers, body)` of the answer, retried (1 + max_retries attempts in
        all) on RETRY_STATUS, timeouts, transport errors and whatever `parse` raises as _Retryable."""
        url = f"{self.base_url}{path}"
        attempts = 1 + int(self.opts["max_retries"])
        reasons: list[str] = []
        for attempt in range(attempts):
            try:
                status, headers, body = self._attempt(method, url, payload)
                if status in RETRY_STATUS:
                    raise _Retryable(f"HTTP {status}: {self.blank(body)}", _retry_after(headers.get("retry-after")))
                return parse(status, headers, body)
            except _Retryable as exc:
                reasons.append(str(exc))
                if attempt + 1 == attempts:
                    break
                self._wait(attempt, exc.retry_after)
        raise ServedModelError(
            f"model {self.spec.name!r}: {method} {url} failed after {attempts} attempts; last: {reasons[-1]}"
        )

    def _wait(self, attempt: int, retry_after: float | None) -> None:
        """Exponential backoff with full jitter; a Retry-After up to max_retry_after_s wins."""
        cap = float(self.opts["max_backoff_s"])
        delay = random.uniform(0, min(cap, float(self.opts["backoff_s"]) * 2**attempt))
        if retry_after is not None:
            delay = max(delay, min(float(self.opts["max_retry_after_s"]), retry_after))
        with self.lock:
            self.stats["retries"] += 1
        time.sleep(delay)

    def _attempt(self, method: str, url: str, payload: dict[str, Any] | None) -> tuple[int, Any, bytes]:
        """One exchange within the total deadline: (status, headers, body) or _Retryable."""
        timeout = float(self.opts["timeout_s"])
        start = time.perf_counter()
        outcome: dict[str, Any] = {}
        done, abandoned = threading.Event(), threading.Event()

        def exchange() -> None:
            try:
                with self._http.stream(method, url, json=payload) as response:
                    chunks = []
                    for chunk in response.iter_bytes():
                        if abandoned.is_set():
                            return
                        chunks.append(chunk)
                    outcome["answer"] = (response.status_code, response.headers, b"".join(chunks))
            except Exception as exc:  # noqa: BLE001 - handed to the waiting caller
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=exchange, name="embedlab-openai-request", daemon=True).start()
        if not done.wait(timeout):
            abandoned.set()
            raise _Retryable(f"timeout after timeout_s={timeout:g} s (no complete answer: connect, headers and body)")
        error = outcome.get("error")
        if isinstance(error, self._httpx.TimeoutException):
            raise _Retryable(f"timeout after timeout_s={timeout:g} s ({type(error).__name__})")
        if isinstance(error, self._httpx.TransportError):
            raise _Retryable(f"connection error ({type(error).__name__}: {error})")
        if error is not None:
            raise error
        with self.lock:
            self.stats["requests"] += 1
            self.stats["request_s"] += time.perf_counter() - start
        return outcome["answer"]


def _model_card(client: ServedClient) -> dict[str, Any] | None:
    """The server's `/models` entry for `served_model` (MODEL_CARD_FIELDS only); None when the
    server has no model list (HTTP 404, 405, 501). ServedModelError when it cannot be reached
    or does not list the model."""
    served = client.opts["served_model"]
    where = f"model {client.spec.name!r}: GET {client.base_url}/models"

    def parse(status: int, headers: Any, body: bytes) -> dict[str, Any] | None:
        if status in NO_MODEL_LIST:
            return None
        if status != 200:
            raise ServedModelError(f"{where} answered HTTP {status}: {client.blank(body)}")
        try:
            cards = {str(c["id"]): c for c in json.loads(body)["data"]}
        except (ValueError, KeyError, TypeError):
            raise ServedModelError(
                f"{where} did not answer an OpenAI model list ({{'data': [{{'id': ...}}]}})"
            ) from None
        if served not in cards:
            raise ServedModelError(
                f"model {client.spec.name!r}: field 'served_model' is {served!r}, but {client.base_url}/models serves "
                f"{sorted(cards)}"
            )
        return {k: cards[served][k] for k in MODEL_CARD_FIELDS if k in cards[served]}

    return client.call("GET", "/models", None, parse)


def _identify(client: ServedClient, embed: Callable[[list[str]], np.ndarray]) -> dict[str, Any]:
    """What identifies the served weights: the `/models` entry, or without one the rounded
    canary embedding's SHA-256 and width (`embed` sends raw texts, no prompt)."""
    card = _model_card(client)
    if card is not None:
        return {"model_card": card}
    vector = l2_normalize(embed([CANARY_TEXT]))[0]
    rounded = np.round(vector.astype(np.float64), CANARY_DECIMALS) + 0.0  # + 0.0: no negative zeros
    return {
        "model_card": None,
        "canary_sha256": hashlib.sha256(rounded.astype("<f8").tobytes()).hexdigest(),
        "canary_dim": int(vector.size),
    }


def served_identity(spec: ModelSpec) -> dict[str, Any]:
    """What identifies a served model for the embedding cache: served_model, base URL, the
    server's scheme://host:port and either its /models entry (weights `root`, `max_model_len`,
    ...) or, for a server without one, the canary fingerprint. Never the key. An unreachable
    server is keyed as such (its run fails, and failed runs are never cached)."""
    opts = served_options(spec)
    out: dict[str, Any] = {
        "kind": "served",
        "served_model": opts["served_model"],
        "base_url": opts["base_url"].rstrip("/"),
        "host": server_host(opts["base_url"]),
    }
    try:
        backend = OpenAIBackend(spec)
    except (ServedModelError, ConfigError) as exc:
        return {**out, "model_card": f"unreachable: {exc}"}
    try:
        return {**out, **backend.identity}
    finally:
        backend.close()


class OpenAIBackend(BaseEncoder):
    """An embedding model behind an OpenAI-compatible `/embeddings` endpoint.

    Options (README "Served models"): base_url (e.g. http://127.0.0.1:8000/v1), served_model,
    api_key_env, batch_size (texts per request), max_concurrency (requests in flight),
    timeout_s (total per request, seconds), max_retries, backoff_s / max_backoff_s (seconds),
    max_retry_after_s (the longest Retry-After waited, seconds), send_dimensions (pass
    `dimensions` to the server; False truncates client-side), encoding_format ("float" or "base64")."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._client = ServedClient(spec)
        self._opts = self._client.opts
        self._url = f"{self._client.base_url}/embeddings"
        self._pool = ThreadPoolExecutor(
            max_workers=int(self._opts["max_concurrency"]), thread_name_prefix="embedlab-openai"
        )
        self.identity = _identify(self._client, lambda texts: self._request(texts, None))
        self._card = self.identity["model_card"] or {}

    def __repr__(self) -> str:
        host = server_host(self._opts["base_url"])
        return f"OpenAIBackend({self.spec.name!r}, served_model={self._opts['served_model']!r}, host={host!r})"

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._client.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown
            pass

    # ---- capabilities -------------------------------------------------------------------
    def effective_settings(self) -> dict[str, Any]:
        """What the client runs with; the engine facts are the server's (its /models entry,
        or the canary fingerprint where it has none)."""
        settings: dict[str, Any] = {
            "pooling": f"the server's (record: {self.spec.pooling})" if self.spec.pooling else "the server's",
            "normalize": self.spec.normalize,
            "device": "served",
            "engine": f"openai-compatible {server_host(self._opts['base_url'])} ({self._opts['served_model']})",
            "memory": SERVED_NOTE,
            **{
                k: self._opts[k]
                for k in (
                    "batch_size",
                    "max_concurrency",
                    "timeout_s",
                    "max_retries",
                    "max_retry_after_s",
                    "encoding_format",
                )
            },
            "server_model": dict(self.identity),
        }
        if isinstance(self._card.get("max_model_len"), int):
            settings["max_length"] = self._card["max_model_len"]
        return settings

    def memory_report(self) -> dict[str, Any]:
        """No memory figures (the server holds the model); request counts and retries instead."""
        with self._client.lock:
            stats = dict(self._client.stats)
        return {
            "memory_note": SERVED_NOTE,
            "kv_cache_note": SERVED_NOTE,
            "served_model": self._opts["served_model"],
            **stats,
        }

    # ---- encoding -----------------------------------------------------------------------
    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "document",
        *,
        instruction: str | None = None,
        dimensions: int | None = None,
    ) -> np.ndarray:
        """float32 (len(texts), dim): prompts applied here, batches sent concurrently, answers
        validated; rows L2-normalised when `spec.normalize`."""
        self.spec.check_dimensions(dimensions)
        prepared = self.prepare(texts, kind, instruction)
        if not prepared:
            return np.zeros((0, dimensions or self.spec.dim or 0), dtype=np.float32)
        send = dimensions if self._opts["send_dimensions"] else None
        size = int(self._opts["batch_size"])
        batches = [prepared[i : i + size] for i in range(0, len(prepared), size)]
        parts = list(self._pool.map(lambda batch: self._request(batch, send), batches))
        widths = {p.shape[1] for p in parts}
        if len(widths) != 1:
            raise ServedModelError(
                f"model {self.spec.name!r}: batches came back with different widths {sorted(widths)}"
            )
        out = np.concatenate(parts)
        if dimensions is not None and send is None:
            out = truncate(out, dimensions, self.spec)
        return l2_normalize(out) if self.spec.normalize else out.astype(np.float32, copy=False)

    def _request(self, batch: list[str], dimensions: int | None) -> np.ndarray:
        """One batch of raw texts, retried where a retry may help (`ServedClient.call`)."""
        payload: dict[str, Any] = {
            "model": self._opts["served_model"],
            "input": batch,
            "encoding_format": self._opts["encoding_format"],
        }
        if dimensions is not None:
            payload["dimensions"] = dimensions

        def parse(status: int, headers: Any, body: bytes) -> np.ndarray:
            if status != 200:
                message = self._client.blank(body)
                if dimensions is not None and status in (400, 422):
                    raise ServedModelError(
                        f"model {self.spec.name!r}: the server refused dimensions={dimensions} (HTTP {status}: "
                        f"{message}); "
                        "set option send_dimensions: false to truncate client-side (MRL models only)"
                    )
                raise ServedModelError(f"model {self.spec.name!r}: {self._url} answered HTTP {status}: {message}")
            try:
                data = json.loads(body)
            except (UnicodeDecodeError, ValueError) as exc:
                raise _Retryable(f"unreadable JSON body ({exc}; {len(body)} bytes)") from None
            return self._vectors(data, len(batch), dimensions)

        return self._client.call("POST", "/embeddings", payload, parse)

    def _vectors(self, data: Any, n: int, dimensions: int | None) -> np.ndarray:
        """The answer's embeddings in input order, or ServedModelError saying what is wrong."""
        where = f"model {self.spec.name!r}: {self._url}"
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) and "embedding" in i for i in items):
            raise ServedModelError(
                f"{where} answered no OpenAI embedding list ({{'data': [{{'index', 'embedding'}}]}})"
            )
        if len(items) != n:
            raise ServedModelError(f"{where} returned {len(items)} embeddings for {n} inputs")
        indexes = [i.get("index") for i in items]
        if sorted(ix for ix in indexes if isinstance(ix, int) and not isinstance(ix, bool)) != list(range(n)):
            raise ServedModelError(f"{where}: the 'index' fields are not 0..{n - 1} once each (got {indexes[:10]}...)")
        rows = []
        for item in sorted(items, key=lambda i: i["index"]):
            vector = item["embedding"]
            try:
                if isinstance(vector, str):  # encoding_format base64: little-endian float32
                    row = np.frombuffer(base64.b64decode(vector, validate=True), dtype="<f4")
                elif isinstance(vector, list) and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in vector
                ):
                    row = np.asarray(vector, dtype=np.float64)
                else:
                    raise ValueError("not a list of numbers")
            except ValueError as exc:
                raise ServedModelError(f"{where}: embedding {item['index']} is unreadable ({exc})") from None
            rows.append(row)
        widths = {len(r) for r in rows}
        if len(widths) != 1 or 0 in widths:
            raise ServedModelError(f"{where}: embeddings of unequal or zero width {sorted(widths)}")
        out = np.stack(rows)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise ServedModelError(f"{where}: {int(bad.sum())} of {n} embeddings contain NaN or inf")
        width = out.shape[1]
        if dimensions is not None and width != dimensions:
            raise ServedModelError(
                f"{where}: asked for dimensions={dimensions}, got {width}-d embeddings (the server ignored "
                "'dimensions')"
            )
        if dimensions is None and self.spec.dim is not None and width != self.spec.dim:
            raise ServedModelError(
                f"{where}: the record says dim {self.spec.dim}, the server returned {width}-d embeddings"
            )
        if (big := np.abs(out).max()) > np.finfo(np.float32).max:
            raise ServedModelError(f"{where}: values beyond float32 range (max |x| = {big:g})")
        usage = data.get("usage") if isinstance(data, dict) else None
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            with self._client.lock:
                self._client.stats["server_prompt_tokens"] += usage["prompt_tokens"]
        return out.astype(np.float32)
