"""Served models over an OpenAI-compatible embeddings API (`vllm serve`, TEI, Xinference,
Ollama, a cloud endpoint): `POST {base_url}/embeddings` through httpx.

The record's prompts are applied here, client-side (`spec.format`), so a served model gets
exactly the strings the in-process backends give it. Texts go in batches of `batch_size`,
at most `max_concurrency` requests at a time; a 429, a 5xx, a timeout, a dropped connection
or an unreadable body is retried with exponential backoff and full jitter (a `Retry-After`
header is honoured), other errors and every malformed answer (wrong shape, count, order,
width, non-finite values) raise `ServedModelError` with the reason, which the runner turns
into a failed row. Every request has a total deadline (`timeout_s`), so nothing hangs.

Latency and throughput are measured at the client; GPU memory is the server's, so none is
reported. The API key is read from the environment variable named by `api_key_env` and
lives only in the HTTP client's headers: never in the record, results, logs or errors."""

from __future__ import annotations

import base64
import email.utils
import json
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from embedlab.errors import BackendUnavailableError, ConfigError
from embedlab.models.backends import BaseEncoder, l2_normalize, truncate
from embedlab.models.resolve import check_served
from embedlab.models.spec import Kind, ModelSpec

DEFAULTS: dict[str, Any] = {
    "batch_size": 64, "max_concurrency": 4, "timeout_s": 60.0, "max_retries": 5,
    "backoff_s": 0.5, "max_backoff_s": 30.0, "send_dimensions": True, "encoding_format": "float",
}
RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)
SERVED_NOTE = "served: GPU memory is the server's"
# Fields of a /v1/models entry that identify the weights (vLLM's `created` is the time of
# the request, so it is left out).
MODEL_CARD_FIELDS = ("id", "object", "owned_by", "root", "parent", "max_model_len")


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
        raise ConfigError(f"model {spec.name!r}: field 'api_key_env' names environment variable {env_name!r}, which is not set or empty")
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


def fetch_model_card(spec: ModelSpec, timeout_s: float = 10.0) -> dict[str, Any]:
    """The server's `/models` entry for `served_model` (MODEL_CARD_FIELDS only). ServedModelError
    when the server cannot be reached or does not list the model."""
    import httpx

    opts = served_options(spec)
    key = _api_key(spec, opts.get("api_key_env"))
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = f"{opts['base_url'].rstrip('/')}/models"
    try:
        response = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise ServedModelError(f"model {spec.name!r}: GET {url} failed ({type(exc).__name__}: {exc})") from None
    if response.status_code != 200:
        raise ServedModelError(f"model {spec.name!r}: GET {url} answered HTTP {response.status_code}: {_error_text(response.content, key)}")
    try:
        data = response.json()["data"]
        cards = {str(c["id"]): c for c in data}
    except (ValueError, KeyError, TypeError):
        raise ServedModelError(f"model {spec.name!r}: GET {url} did not answer an OpenAI model list ({{'data': [{{'id': ...}}]}})") from None
    served = opts["served_model"]
    if served not in cards:
        raise ServedModelError(f"model {spec.name!r}: field 'served_model' is {served!r}, but {url} serves {sorted(cards)}")
    return {k: cards[served][k] for k in MODEL_CARD_FIELDS if k in cards[served]}


def served_identity(spec: ModelSpec) -> dict[str, Any]:
    """What identifies a served model for the embedding cache: served_model, the server's
    scheme://host:port and its /models entry (weights `root`, `max_model_len`, ...). Never the
    key. An unreachable server is keyed as such (its run fails, and failed runs are never cached)."""
    opts = served_options(spec)
    try:
        card: dict[str, Any] | str = fetch_model_card(spec)
    except (ServedModelError, ConfigError) as exc:
        card = f"unreachable: {exc}"
    return {"kind": "served", "served_model": opts["served_model"], "host": server_host(opts["base_url"]), "model_card": card}


class OpenAIBackend(BaseEncoder):
    """An embedding model behind an OpenAI-compatible `/embeddings` endpoint.

    Options (README "Served models"): base_url (e.g. http://127.0.0.1:8000/v1), served_model,
    api_key_env, batch_size (texts per request), max_concurrency (requests in flight),
    timeout_s (total per request, seconds), max_retries, backoff_s / max_backoff_s (seconds),
    send_dimensions (pass `dimensions` to the server; False truncates client-side),
    encoding_format ("float" or "base64")."""

    def __init__(self, spec: ModelSpec) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise BackendUnavailableError("backend 'openai' needs httpx: pip install 'embedlab[openai]'") from exc
        self.spec = spec
        self._opts = served_options(spec)
        self._url = f"{self._opts['base_url'].rstrip('/')}/embeddings"
        key = _api_key(spec, self._opts.get("api_key_env"))
        self._blank = lambda body: _error_text(body, key)  # the key stays in this closure and the client's headers
        self._httpx = httpx
        self._client = httpx.Client(
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=float(self._opts["timeout_s"]),
            limits=httpx.Limits(max_connections=int(self._opts["max_concurrency"])),
        )
        self._card = fetch_model_card(spec, timeout_s=float(self._opts["timeout_s"]))
        self._lock = threading.Lock()
        self._stats = {"requests": 0, "retries": 0, "server_prompt_tokens": 0, "request_s": 0.0}
        self._pool = ThreadPoolExecutor(max_workers=int(self._opts["max_concurrency"]), thread_name_prefix="embedlab-openai")

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.spec.name!r}, served_model={self._opts['served_model']!r}, host={server_host(self._opts['base_url'])!r})"

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
        """What the client runs with; the engine facts are the server's (its /models entry)."""
        settings: dict[str, Any] = {
            "pooling": f"the server's (record: {self.spec.pooling})" if self.spec.pooling else "the server's", "normalize": self.spec.normalize, "device": "served",
            "engine": f"openai-compatible {server_host(self._opts['base_url'])} ({self._opts['served_model']})",
            "memory": SERVED_NOTE,
            **{k: self._opts[k] for k in ("batch_size", "max_concurrency", "timeout_s", "max_retries", "encoding_format")},
            "server_model": dict(self._card),
        }
        if isinstance(self._card.get("max_model_len"), int):
            settings["max_length"] = self._card["max_model_len"]
        return settings

    def memory_report(self) -> dict[str, Any]:
        """No memory figures (the server holds the model); request counts and retries instead."""
        with self._lock:
            stats = dict(self._stats)
        return {"memory_note": SERVED_NOTE, "kv_cache_note": SERVED_NOTE, "served_model": self._opts["served_model"], **stats}

    # ---- encoding -----------------------------------------------------------------------
    def encode(self, texts: Sequence[str], kind: Kind = "document", *, instruction: str | None = None, dimensions: int | None = None) -> np.ndarray:
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
            raise ServedModelError(f"model {self.spec.name!r}: batches came back with different widths {sorted(widths)}")
        out = np.concatenate(parts)
        if dimensions is not None and send is None:
            out = truncate(out, dimensions, self.spec)
        return l2_normalize(out) if self.spec.normalize else out.astype(np.float32, copy=False)

    def _request(self, batch: list[str], dimensions: int | None) -> np.ndarray:
        """One batch, retried where a retry may help (total attempts: 1 + max_retries)."""
        payload: dict[str, Any] = {"model": self._opts["served_model"], "input": batch, "encoding_format": self._opts["encoding_format"]}
        if dimensions is not None:
            payload["dimensions"] = dimensions
        attempts = 1 + int(self._opts["max_retries"])
        reasons: list[str] = []
        for attempt in range(attempts):
            try:
                return self._attempt(payload, len(batch), dimensions)
            except _Retryable as exc:
                reasons.append(str(exc))
                if attempt + 1 == attempts:
                    break
                cap = float(self._opts["max_backoff_s"])
                delay = random.uniform(0, min(cap, float(self._opts["backoff_s"]) * 2**attempt))
                if exc.retry_after is not None:
                    delay = max(delay, min(cap, exc.retry_after))
                with self._lock:
                    self._stats["retries"] += 1
                time.sleep(delay)
        raise ServedModelError(f"model {self.spec.name!r}: {self._url} failed after {attempts} attempts; last: {reasons[-1]}")

    def _attempt(self, payload: dict[str, Any], n: int, dimensions: int | None) -> np.ndarray:
        httpx = self._httpx
        timeout = float(self._opts["timeout_s"])
        start = time.perf_counter()
        deadline = start + timeout
        try:
            with self._client.stream("POST", self._url, json=payload) as response:
                chunks = []
                for chunk in response.iter_bytes():  # a total deadline: a trickling server cannot hold us
                    chunks.append(chunk)
                    if time.perf_counter() > deadline:
                        raise _Retryable(f"timeout: no complete answer within timeout_s={timeout:g} s")
                body = b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"timeout after timeout_s={timeout:g} s ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"connection error ({type(exc).__name__}: {exc})") from None
        with self._lock:
            self._stats["requests"] += 1
            self._stats["request_s"] += time.perf_counter() - start
        status = response.status_code
        if status in RETRY_STATUS:
            raise _Retryable(f"HTTP {status}: {self._blank(body)}", _retry_after(response.headers.get("retry-after")))
        if status != 200:
            message = self._blank(body)
            if dimensions is not None and status in (400, 422):
                raise ServedModelError(
                    f"model {self.spec.name!r}: the server refused dimensions={dimensions} (HTTP {status}: {message}); "
                    "set option send_dimensions: false to truncate client-side (MRL models only)"
                )
            raise ServedModelError(f"model {self.spec.name!r}: {self._url} answered HTTP {status}: {message}")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise _Retryable(f"unreadable JSON body ({exc}; {len(body)} bytes)") from None
        return self._vectors(data, n, dimensions)

    def _vectors(self, data: Any, n: int, dimensions: int | None) -> np.ndarray:
        """The answer's embeddings in input order, or ServedModelError saying what is wrong."""
        where = f"model {self.spec.name!r}: {self._url}"
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) and "embedding" in i for i in items):
            raise ServedModelError(f"{where} answered no OpenAI embedding list ({{'data': [{{'index', 'embedding'}}]}})")
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
                elif isinstance(vector, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vector):
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
            raise ServedModelError(f"{where}: asked for dimensions={dimensions}, got {width}-d embeddings (the server ignored 'dimensions')")
        if dimensions is None and self.spec.dim is not None and width != self.spec.dim:
            raise ServedModelError(f"{where}: the record says dim {self.spec.dim}, the server returned {width}-d embeddings")
        if (big := np.abs(out).max()) > np.finfo(np.float32).max:
            raise ServedModelError(f"{where}: values beyond float32 range (max |x| = {big:g})")
        usage = data.get("usage") if isinstance(data, dict) else None
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            with self._lock:
                self._stats["server_prompt_tokens"] += usage["prompt_tokens"]
        return out.astype(np.float32)
