"""BGE-M3's sparse (lexical weights), multi-vector (ColBERT) and hybrid modes as `Scorer`
backends, through transformers or vLLM.

The scores follow the model card's reference code (FlagEmbedding's M3 embedder):
- sparse: per text, `relu(sparse_linear(h))` per token, the maximum per token id, the CLS,
  EOS, PAD and UNK ids removed, weights <= 0 dropped; the score of a pair is the sum over
  shared token ids of the product of the two weights;
- ColBERT: `colbert_linear(h)` for every token after the first (CLS), L2-normalised; the
  score is the mean over query vectors of the maximum dot product with the document's;
- hybrid: `(w_dense * dense + w_sparse * sparse + w_colbert * colbert) / sum(w)`, as
  `compute_score(weights_for_different_modes=...)` computes it (dense: the normalised CLS
  vector's dot product); default weights [0.4, 0.2, 0.4], the model card's example.

The record's `options` say `mode` ("sparse", "colbert" or "hybrid") and, for hybrid,
`weights` ([dense, sparse, colbert]). The heads are the checkpoint's `sparse_linear.pt`
(Linear hidden -> 1) and `colbert_linear.pt` (Linear hidden -> hidden) state dicts.

vLLM (0.32) runs them as its `BgeM3EmbeddingModel` (architecture override), which loads
both heads from those files; an `LLM` serves one pooling task, so ColBERT uses an engine for
`token_embed`, sparse one for `token_classify`, and hybrid two (`embed&token_classify` and
`token_embed`)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.errors import BackendUnavailableError, ConfigError
from embedlab.models.backends import BaseScorer, l2_normalize
from embedlab.models.backends.hub import effective_max_length, read_model_config, resolve_model_path, tokenize
from embedlab.models.spec import Kind, ModelSpec
from embedlab.types import GIB

MODES = ("sparse", "colbert", "hybrid")
# [dense, sparse, colbert]: the weights of the model card's hybrid example
DEFAULT_WEIGHTS = (0.4, 0.2, 0.4)
HEAD_FILES = {"sparse": "sparse_linear.pt", "colbert": "colbert_linear.pt"}
VLLM_ARCHITECTURE = "BgeM3EmbeddingModel"


def m3_mode(spec: ModelSpec) -> str:
    """The record's `mode` option; ConfigError naming the model and the field otherwise."""
    mode = spec.options.get("mode")
    if mode not in MODES:
        raise ConfigError(f"model {spec.name!r}: option 'mode' must be one of {MODES}, got {mode!r}")
    return str(mode)


def hybrid_weights(spec: ModelSpec) -> tuple[float, float, float]:
    """The record's `weights` option ([dense, sparse, colbert], default `DEFAULT_WEIGHTS`):
    three non-negative numbers with a positive sum, else ConfigError naming the field."""
    raw = spec.options.get("weights", DEFAULT_WEIGHTS)
    where = f"model {spec.name!r}: option 'weights'"
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or len(raw) != 3:
        raise ConfigError(f"{where} must be three numbers [dense, sparse, colbert], got {raw!r}")
    try:
        weights = tuple(float(w) for w in raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be three numbers [dense, sparse, colbert], got {raw!r}") from None
    if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"{where} must be finite, non-negative and not all zero, got {raw!r}")
    return weights  # type: ignore[return-value]


@dataclass
class M3Outputs:
    """What BGE-M3 gives for a list of texts: dense (n, dim) normalised CLS vectors,
    sparse lexical weights (token id -> weight) and ColBERT vectors ((n_tokens - 1, dim)
    each); None for an output the mode does not need."""

    dense: np.ndarray | None = None
    sparse: list[dict[int, float]] | None = None
    colbert: list[np.ndarray] | None = None


def unused_token_ids(tokenizer: Any) -> set[int]:
    """The ids the reference code leaves out of the lexical weights: CLS, EOS, PAD and UNK
    (those the tokenizer has)."""
    names = ("cls_token", "eos_token", "pad_token", "unk_token")
    tokens = [tokenizer.special_tokens_map[n] for n in names if tokenizer.special_tokens_map.get(n)]
    return {int(tokenizer.convert_tokens_to_ids(t)) for t in tokens}


def lexical_weights(token_ids: Sequence[int], weights: Sequence[float], unused: set[int]) -> dict[int, float]:
    """Token id -> the largest positive weight it has in the text, unused ids left out."""
    out: dict[int, float] = {}
    for token, weight in zip(token_ids, weights):
        token, weight = int(token), float(weight)
        if token not in unused and weight > 0 and weight > out.get(token, 0.0):
            out[token] = weight
    return out


def sparse_scores(queries: Sequence[dict[int, float]], documents: Sequence[dict[int, float]]) -> np.ndarray:
    """Lexical matching scores, (n_queries, n_docs) float32: the sum over shared token ids
    of the product of their weights (an inverted index over the documents)."""
    postings: dict[int, tuple[list[int], list[float]]] = {}
    for doc, weights in enumerate(documents):
        for token, weight in weights.items():
            docs, values = postings.setdefault(token, ([], []))
            docs.append(doc)
            values.append(weight)
    index = {t: (np.asarray(d, dtype=np.int64), np.asarray(v, dtype=np.float64)) for t, (d, v) in postings.items()}
    out = np.zeros((len(queries), len(documents)), dtype=np.float64)
    for row, weights in enumerate(queries):
        for token, weight in weights.items():
            if token in index:
                docs, values = index[token]
                out[row, docs] += weight * values
    return out.astype(np.float32)


def colbert_scores(queries: Sequence[np.ndarray], documents: Sequence[np.ndarray]) -> np.ndarray:
    """Late-interaction scores, (n_queries, n_docs) float32: for each query vector the
    largest dot product with the document's vectors, averaged over the query's vectors. A
    text without vectors scores 0."""
    out = np.zeros((len(queries), len(documents)), dtype=np.float32)
    lengths = np.asarray([len(d) for d in documents], dtype=np.int64)
    filled = np.flatnonzero(lengths > 0)
    if not len(filled) or not len(queries):
        return out
    stacked = np.concatenate([documents[i] for i in filled]).astype(np.float32)
    starts = np.concatenate([[0], np.cumsum(lengths[filled])[:-1]])
    for row, query in enumerate(queries):
        if len(query) == 0:
            continue
        sims = np.asarray(query, dtype=np.float32) @ stacked.T  # (query tokens, all document tokens)
        best = np.maximum.reduceat(sims, starts, axis=1)  # (query tokens, filled documents)
        out[row, filled] = best.mean(axis=0)
    return out


def hybrid_scores(dense: np.ndarray, sparse: np.ndarray, colbert: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """The weighted mean of the three score matrices, as the reference `compute_score`:
    (w0 * dense + w1 * sparse + w2 * colbert) / (w0 + w1 + w2)."""
    w_dense, w_sparse, w_colbert = (float(w) for w in weights)
    total = w_dense + w_sparse + w_colbert
    return ((w_dense * dense + w_sparse * sparse + w_colbert * colbert) / total).astype(np.float32)


def _head_files(spec: ModelSpec, path: str, mode: str) -> dict[str, Path]:
    """The head files the mode needs, checked to exist (vLLM would start without them)."""
    needed = ("sparse", "colbert") if mode == "hybrid" else (mode,)
    files = {head: Path(path) / HEAD_FILES[head] for head in needed}
    for head, file in files.items():
        if not file.is_file():
            raise ConfigError(
                f"model {spec.name!r}: {file} is missing; BGE-M3's {head} mode needs the checkpoint's "
                f"{HEAD_FILES[head]} (a state dict with 'weight' and 'bias'), shipped beside model.safetensors in "
                "BAAI/bge-m3"
            )
    return files


class _M3Scorer(BaseScorer):
    """index(corpus) encodes the documents once; score(queries) encodes the queries and
    scores them against every document in the record's mode."""

    spec: ModelSpec
    mode: str

    def _setup(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.mode = m3_mode(spec)
        self.weights = hybrid_weights(spec) if self.mode == "hybrid" else None
        self._docs: M3Outputs | None = None
        self._n_docs = 0

    def _encode(self, texts: Sequence[str], kind: Kind) -> M3Outputs:
        raise NotImplementedError

    def prepare(self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None) -> list[str]:
        """The exact strings tokenised (BGE-M3 takes no instruction: the record's prompts)."""
        return self.spec.format(list(texts), kind, instruction)

    def token_ids(
        self, texts: Sequence[str], kind: Kind = "document", instruction: str | None = None
    ) -> list[list[int]]:
        """The token ids the model receives for `texts`."""
        return tokenize(self._tokenizer, self.prepare(texts, kind, instruction), self._max_length, None)

    def count_tokens(self, texts: Sequence[str]) -> int:
        return sum(len(seq) for seq in self.token_ids(texts))

    def encode_outputs(self, texts: Sequence[str], kind: Kind = "document") -> M3Outputs:
        """The outputs this mode needs for `texts` (empty outputs for no texts)."""
        if not texts:
            return M3Outputs(dense=np.zeros((0, 0), dtype=np.float32), sparse=[], colbert=[])
        return self._encode(texts, kind)

    def index(self, corpus: Sequence[str]) -> None:
        self._docs = self.encode_outputs(corpus, "document")
        self._n_docs = len(corpus)

    def score(self, queries: Sequence[str]) -> np.ndarray:
        """Scores of every document for every query in the record's mode, (n_queries, n_docs)."""
        if self._docs is None:
            raise RuntimeError("call index(corpus) before score(queries)")
        if not queries or not self._n_docs:
            return np.zeros((len(queries), self._n_docs), dtype=np.float32)
        q, d = self.encode_outputs(queries, "query"), self._docs
        if self.mode == "sparse":
            return sparse_scores(q.sparse, d.sparse)
        if self.mode == "colbert":
            return colbert_scores(q.colbert, d.colbert)
        dense = (q.dense @ d.dense.T).astype(np.float32)
        return hybrid_scores(
            dense, sparse_scores(q.sparse, d.sparse), colbert_scores(q.colbert, d.colbert), self.weights
        )

    def _settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "max_length": self._max_length, "normalize": self.spec.normalize}
        if self.weights is not None:
            out["weights"] = list(self.weights)
        return out


class BGEM3TransformersBackend(_M3Scorer):
    """BGE-M3's modes with transformers: `AutoModel` (XLM-RoBERTa) plus the checkpoint's
    `sparse_linear.pt` / `colbert_linear.pt` heads, computed as the reference code does.

    Options: mode, weights, device, dtype, batch_size (default 32), max_length."""

    def __init__(self, spec: ModelSpec) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from embedlab.models.backends.st import cuda_memory_report, pick_device, pick_dtype

        self._setup(spec)
        path = resolve_model_path(spec)
        files = _head_files(spec, path, self.mode)
        self._torch = torch
        self.device = pick_device(spec)
        self._dtype = pick_dtype(spec, self.device, path)
        start = time.perf_counter()
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._tokenizer.padding_side = "right"
        self._model = AutoModel.from_pretrained(path, dtype=self._dtype, local_files_only=True).to(self.device).eval()
        hidden = int(self._model.config.hidden_size)
        self._heads: dict[str, Any] = {}
        for head, file in files.items():
            layer = torch.nn.Linear(hidden, 1 if head == "sparse" else hidden)
            try:
                layer.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
            except (RuntimeError, KeyError) as exc:
                raise ConfigError(
                    f"model {spec.name!r}: {file} is not a Linear({hidden} -> {layer.out_features}) state dict: {exc}"
                ) from None
            self._heads[head] = layer.to(device=self.device, dtype=self._dtype).eval()
        self.load_weights_s = time.perf_counter() - start
        self._unused = unused_token_ids(self._tokenizer)
        self._max_length = effective_max_length(spec, path)
        self._batch_size = int(spec.options.get("batch_size", 32))
        self._weights_bytes = sum(
            p.numel() * p.element_size() for m in (self._model, *self._heads.values()) for p in m.parameters()
        )
        self._cuda_memory_report = cuda_memory_report

    def effective_settings(self) -> dict[str, Any]:
        """mode, weights, max_length (tokens), dtype, pooling, normalize, device, engine."""
        from importlib.metadata import version

        return {
            **self._settings(),
            "dtype": str(self._dtype).removeprefix("torch."),
            "pooling": "cls",
            "device": self.device,
            "engine": f"transformers {version('transformers')}",
        }

    def _encode(self, texts: Sequence[str], kind: Kind) -> M3Outputs:
        torch = self._torch
        ids = self.token_ids(texts, kind)
        need_dense = self.mode == "hybrid"
        need_sparse, need_colbert = "sparse" in self._heads, "colbert" in self._heads
        dense: list[np.ndarray | None] = [None] * len(ids)
        sparse: list[dict[int, float]] = [{} for _ in ids]
        colbert: list[np.ndarray | None] = [None] * len(ids)
        order = np.argsort([-len(seq) for seq in ids], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(ids), self._batch_size):
                rows = order[start : start + self._batch_size]
                batch = self._tokenizer.pad(
                    [{"input_ids": ids[i]} for i in rows], padding=True, return_tensors="pt"
                ).to(self.device)
                hidden = self._model(**batch, return_dict=True).last_hidden_state
                mask = batch["attention_mask"]
                lengths = mask.sum(1).tolist()
                if need_dense:
                    cls = hidden[:, 0].float()
                    cls = torch.nn.functional.normalize(cls, dim=-1) if self.spec.normalize else cls
                    for j, i in enumerate(rows):
                        dense[i] = cls[j].cpu().numpy()
                if need_sparse:
                    weights = torch.relu(self._heads["sparse"](hidden)).squeeze(-1).float().cpu().numpy()
                    for j, i in enumerate(rows):
                        sparse[i] = lexical_weights(ids[i], weights[j, : lengths[j]], self._unused)
                if need_colbert:
                    vecs = self._heads["colbert"](hidden[:, 1:]) * mask[:, 1:, None].to(hidden.dtype)
                    vecs = torch.nn.functional.normalize(vecs, dim=-1) if self.spec.normalize else vecs
                    vecs = vecs.float().cpu().numpy()
                    for j, i in enumerate(rows):
                        colbert[i] = vecs[j, : lengths[j] - 1]
        return M3Outputs(
            dense=np.stack(dense).astype(np.float32) if need_dense else None,
            sparse=sparse if need_sparse else None,
            colbert=[np.ascontiguousarray(c, dtype=np.float32) for c in colbert] if need_colbert else None,
        )

    def memory_report(self) -> dict[str, Any]:
        return {
            "weights_gib": self._weights_bytes / GIB,
            "load_weights_s": self.load_weights_s,
            **self._cuda_memory_report(self.device, self._weights_bytes),
        }


# vLLM pooling tasks each mode's engines serve, in order
VLLM_TASKS = {
    "sparse": ("token_classify",),
    "colbert": ("token_embed",),
    "hybrid": ("embed&token_classify", "token_embed"),
}


def m3_pooler_config(task: str, normalize: bool) -> Any:
    """`PoolerConfig` for BGE-M3: CLS pooling, activation (normalise / ReLU) on, and the one
    pooling task the engine serves (vLLM 0.32's `LLM` serves one)."""
    from embedlab.models.backends.vllm import pooler_config

    config = pooler_config("cls", normalize)
    if hasattr(config, "task"):
        config.task = task
    return config


class BGEM3VLLMBackend(_M3Scorer):
    """BGE-M3's modes through vLLM's `BgeM3EmbeddingModel`: `token_classify` gives the
    sparse weights (ReLU of sparse_linear; the first token dropped when it is config.json's
    `bos_token_id`, the last when it is `eos_token_id`), `token_embed` the normalised
    ColBERT vectors (the first dropped when it is the BOS), `embed&token_classify` the dense
    CLS vector followed by the sparse weights. Token ids are embedlab's (as the vllm
    backend), so the weights line up with them exactly.

    Options: mode, weights, and the vllm backend's engine options."""

    def __init__(self, spec: ModelSpec) -> None:
        from embedlab.models.backends.vllm import start_engine

        self._setup(spec)
        path = resolve_model_path(spec)
        _head_files(spec, path, self.mode)
        config = read_model_config(Path(path))
        self._bos, self._eos = config.get("bos_token_id"), config.get("eos_token_id")
        self._hidden = int(config["hidden_size"])
        if spec.options.get("in_process", True):  # as start_engine, before vLLM is first imported
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        import vllm
        from vllm import ModelRegistry

        if VLLM_ARCHITECTURE not in ModelRegistry.get_supported_archs():
            raise BackendUnavailableError(
                f"model {spec.name!r}: vllm {vllm.__version__} has no {VLLM_ARCHITECTURE} (BGE-M3's sparse and ColBERT "
                "heads); "
                "use backend bge-m3-transformers or a vLLM that has it (0.32 does)"
            )
        from vllm import PoolingParams

        self._params = PoolingParams
        self._engines: dict[str, Any] = {}
        self._facts: list[dict[str, Any]] = []
        for task in VLLM_TASKS[self.mode]:
            llm, facts = start_engine(
                spec,
                hf_overrides={"architectures": [VLLM_ARCHITECTURE]},
                pooler_config=m3_pooler_config(task, spec.normalize),
            )
            self._engines[task] = llm
            self._facts.append(facts)
        first = next(iter(self._engines.values()))
        self._tokenizer = first.get_tokenizer()
        self._unused = unused_token_ids(self._tokenizer)
        self._max_length = int(self._facts[0]["max_model_len"])

    def effective_settings(self) -> dict[str, Any]:
        """mode, weights, max_length (tokens), dtype, pooling, normalize, device, engine."""
        facts = self._facts[0]
        return {
            **self._settings(),
            "dtype": facts["dtype"],
            "pooling": "cls",
            "device": facts["device"],
            "engine": f"vllm {facts['vllm_version']} ({VLLM_ARCHITECTURE}: {', '.join(self._engines)})",
        }

    def _run(self, task: str, ids: list[list[int]]) -> list[np.ndarray]:
        outputs = self._engines[task].encode(
            [{"prompt_token_ids": seq} for seq in ids],
            pooling_params=self._params(use_activation=True),
            pooling_task=task,
            use_tqdm=False,
        )
        return [np.asarray(o.outputs.data.float().cpu().numpy(), dtype=np.float32) for o in outputs]

    def _sparse_ids(self, seq: list[int]) -> list[int]:
        """The ids vLLM's token_classify output lines up with (BOS / EOS filter)."""
        start = 1 if seq and seq[0] == self._bos else 0
        end = len(seq) - 1 if len(seq) > start and seq[-1] == self._eos else len(seq)
        return seq[start:end]

    def _sparse(self, seq: list[int], weights: np.ndarray) -> dict[int, float]:
        kept = self._sparse_ids(seq)
        if len(weights) != len(kept):
            raise RuntimeError(f"vLLM gave {len(weights)} token weights for {len(kept)} tokens (ids {seq[:8]}...)")
        # ReLU is idempotent: applied again so the weights are the reference's whatever vLLM's activation did
        return lexical_weights(kept, np.maximum(weights, 0.0), self._unused)

    def _colbert(self, seq: list[int], vecs: np.ndarray) -> np.ndarray:
        # the reference drops the first position (CLS) always; vLLM only when it is the BOS id
        if not (seq and seq[0] == self._bos):
            vecs = vecs[1:]
        if len(vecs) != len(seq) - 1:
            raise RuntimeError(f"vLLM gave {len(vecs)} ColBERT vectors for {len(seq)} tokens (ids {seq[:8]}...)")
        return l2_normalize(vecs) if self.spec.normalize else vecs

    def _encode(self, texts: Sequence[str], kind: Kind) -> M3Outputs:
        ids = self.token_ids(texts, kind)
        out = M3Outputs()
        if "token_classify" in self._engines:
            out.sparse = [self._sparse(seq, w) for seq, w in zip(ids, self._run("token_classify", ids))]
        if "embed&token_classify" in self._engines:
            joined = self._run("embed&token_classify", ids)
            dense = np.stack([row[: self._hidden] for row in joined])
            out.dense = l2_normalize(dense) if self.spec.normalize else dense
            out.sparse = [self._sparse(seq, row[self._hidden :]) for seq, row in zip(ids, joined)]
        if "token_embed" in self._engines:
            out.colbert = [self._colbert(seq, v) for seq, v in zip(ids, self._run("token_embed", ids))]
        return out

    def memory_report(self) -> dict[str, Any]:
        """The first engine's figures; with two engines (hybrid) weights and KV cache are summed."""
        report = dict(self._facts[0])
        report["engines"] = len(self._facts)
        for key in ("weights_gib", "vllm_weights_gib", "kv_cache_reserved_gib"):
            values = [f[key] for f in self._facts if key in f]
            if values:
                report[key] = float(sum(values))
        return report
