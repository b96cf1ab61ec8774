"""A rerank stage: a reranker rescores the top-k documents of any embedding (or lexical)
model, and the result is reported as its own model rows, "<embedder>+<reranker>". Two
kinds, each used as its model card says (the record's `options["scorer"]`):

Qwen3-Reranker is a causal LM read as a yes/no judge: after a fixed prompt (system line,
`<Instruct>: ...\\n<Query>: ...\\n<Document>: ...`, then the assistant turn with an empty
think block), the score is the log-odds logit("yes") - logit("no") at the last position,
i.e. logit(P("yes")). It orders documents exactly as P("yes") does, but P("yes") in float32
rounds to 1.0 for every confident document (log-odds above about 17) and ties them; the
log-odds does not. Both backends build the same token ids: prefix + body (truncated to the
`hub.effective_max_length` of the record) + suffix, and run in `hub.effective_dtype`.
- "transformers": `AutoModelForCausalLM`, left padding, last-position logits, the
  difference taken in float64.
- "vllm": `LLM(..., runner="pooling")` with the documented `hf_overrides`
  (`Qwen3ForSequenceClassification`, `classifier_from_token=["no", "yes"]`: one score
  row, lm_head[yes] - lm_head[no]), `llm.classify` without its sigmoid.

bge-reranker-v2-m3 (scorer "cross-encoder", the reranker BAAI pairs with BGE-M3) is an
XLM-RoBERTa sequence classifier with one output: the card tokenises the pair
`tokenizer(query, passage, truncation=True, max_length=512)` (`<s> query </s></s> passage
</s>`), no instruction, and takes the raw logit as the score (`compute_score`; its
`normalize=True` is the sigmoid of it, which saturates as P("yes") does, so the logit is
kept). "transformers": `AutoModelForSequenceClassification`; "vllm": `llm.classify` without
its sigmoid, on the same token ids.

vLLM engines run with prefix caching off (`backends.vllm.TIMED_ENGINE`): the rerank latency
repeats the same pairs and must compute them again; `prefix_cache_hit_tokens` counts what
vLLM read from a cache anyway (0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from embedlab.errors import UnknownNameError
from embedlab.models.backends.hub import effective_max_length, resolve_model_path
from embedlab.models.registry import QWEN3_DEFAULT_INSTRUCTION
from embedlab.models.spec import ModelSpec

QWEN3_RERANK_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
QWEN3_RERANK_BODY = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
QWEN3_RERANK_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_RERANK_OVERRIDES = {
    "architectures": ["Qwen3ForSequenceClassification"],
    "classifier_from_token": ["no", "yes"],
    "is_original_qwen3_reranker": True,
}


def _records() -> dict[str, ModelSpec]:
    specs = {}
    for size, params in (("0.6B", 596), ("4B", 4022), ("8B", 7568)):
        name = f"qwen3-reranker-{size.lower()}"
        specs[name] = ModelSpec(
            name=name,
            backend="vllm",
            path=f"Qwen/Qwen3-Reranker-{size}",
            max_tokens=8192,
            default_instruction=QWEN3_DEFAULT_INSTRUCTION,
            padding_side="left",
            normalize=False,
            license="Apache-2.0",
            params_m=params,
            description=f"Qwen3-Reranker-{size}: log-odds of 'yes' of a causal LM after the documented prompt",
        )
    return specs


def _bge_reranker() -> ModelSpec:
    """BAAI/bge-reranker-v2-m3 as its card uses it (pairs truncated to 512 tokens; the model
    takes up to 8192)."""
    return ModelSpec(
        name="bge-reranker-v2-m3",
        backend="vllm",
        path="BAAI/bge-reranker-v2-m3",
        max_tokens=512,
        normalize=False,
        license="Apache-2.0",
        params_m=568,
        description="bge-reranker-v2-m3: raw logit of an XLM-RoBERTa cross-encoder over (query, passage)",
        options={"scorer": "cross-encoder"},
    )


RERANKERS: dict[str, ModelSpec] = {**_records(), "bge-reranker-v2-m3": _bge_reranker()}
SCORERS = ("qwen3", "cross-encoder")


def scorer_of(spec: ModelSpec) -> str:
    """How a reranker record scores a pair: "qwen3" (yes/no log-odds of a causal LM, the
    default) or "cross-encoder" (a sequence classifier's raw logit)."""
    scorer = spec.options.get("scorer", "qwen3")
    if scorer not in SCORERS:
        raise UnknownNameError(f"reranker {spec.name!r}: options.scorer must be one of {list(SCORERS)}, got {scorer!r}")
    return scorer


def get_reranker(name: str, **overrides: Any) -> ModelSpec:
    """A registered reranker (`qwen3-reranker-0.6b`, ...) with fields or options changed,
    e.g. `get_reranker("qwen3-reranker-0.6b", path="/models/Qwen3-Reranker-0.6B", backend="transformers")`."""
    key = name.lower()
    if key not in RERANKERS:
        raise UnknownNameError(f"reranker {name!r} is not registered ({', '.join(sorted(RERANKERS))})")
    return RERANKERS[key].with_options(**overrides) if overrides else RERANKERS[key]


def rerank_prompt(query: str, doc: str, instruction: str) -> str:
    """The full text the reranker judges for one (query, document) pair."""
    return (
        QWEN3_RERANK_PREFIX
        + QWEN3_RERANK_BODY.format(instruction=instruction, query=query, doc=doc)
        + QWEN3_RERANK_SUFFIX
    )


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, document) pairs: float64 of shape (n_pairs,), finite, higher is more
    relevant (any real number: a log-odds, not a probability)."""

    spec: ModelSpec

    def score(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> np.ndarray: ...


class _Qwen3Prompt:
    """Token ids of the documented prompt: prefix + body truncated to fit + suffix, in
    `max_length` tokens in all."""

    def __init__(self, tokenizer: Any, spec: ModelSpec, max_length: int) -> None:
        self.spec = spec
        self.tokenizer = tokenizer
        self.prefix = tokenizer.encode(QWEN3_RERANK_PREFIX, add_special_tokens=False)
        self.suffix = tokenizer.encode(QWEN3_RERANK_SUFFIX, add_special_tokens=False)
        self.max_length = max_length
        self.yes = tokenizer.convert_tokens_to_ids("yes")
        self.no = tokenizer.convert_tokens_to_ids("no")

    def token_ids(self, pairs: Sequence[tuple[str, str]], instruction: str | None) -> list[list[int]]:
        task = instruction or self.spec.default_instruction
        bodies = [QWEN3_RERANK_BODY.format(instruction=task, query=q, doc=d) for q, d in pairs]
        if not bodies:
            return []
        budget = self.max_length - len(self.prefix) - len(self.suffix)
        ids = self.tokenizer(bodies, add_special_tokens=False, truncation=True, max_length=budget)["input_ids"]
        return [self.prefix + seq + self.suffix for seq in ids]


class _PairIds:
    """Token ids of a cross-encoder's (query, document) pair as its card builds them:
    `tokenizer(query, doc, truncation=True, max_length=...)`; no instruction."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def token_ids(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> list[list[int]]:
        if not pairs:
            return []
        queries, docs = [q for q, _ in pairs], [d for _, d in pairs]
        return list(self.tokenizer(queries, docs, truncation=True, max_length=self.max_length)["input_ids"])


def _prompt_ids(tokenizer: Any, spec: ModelSpec, max_length: int, cross: bool) -> _PairIds | _Qwen3Prompt:
    """The token-id builder of a reranker record: a cross-encoder's pair, or Qwen3's prompt."""
    return _PairIds(tokenizer, max_length) if cross else _Qwen3Prompt(tokenizer, spec, max_length)


class TransformersReranker:
    """A reranker through transformers: Qwen3-Reranker with `AutoModelForCausalLM` (left
    padding, yes/no log-odds), a cross-encoder with `AutoModelForSequenceClassification`
    (its one logit). Options: device, dtype, max_length, batch_size (16)."""

    def __init__(self, spec: ModelSpec) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

        from embedlab.models.backends.st import pick_device, pick_dtype

        self.spec = spec
        self.device = pick_device(spec)
        self._torch = torch
        self._cross = scorer_of(spec) == "cross-encoder"
        path = resolve_model_path(spec)
        self._dtype = pick_dtype(spec, self.device, path)
        model_class = AutoModelForSequenceClassification if self._cross else AutoModelForCausalLM
        side = "right" if self._cross else "left"
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, padding_side=side)
        self._model = model_class.from_pretrained(path, dtype=self._dtype, local_files_only=True).to(self.device).eval()
        self._prompt = _prompt_ids(self._tokenizer, spec, effective_max_length(spec, path), self._cross)
        self._batch_size = int(spec.options.get("batch_size", 16))

    def effective_settings(self) -> dict[str, Any]:
        """max_length (tokens), dtype, device and engine this reranker runs with."""
        from importlib.metadata import version

        return {
            "max_length": self._prompt.max_length,
            "dtype": str(self._dtype).removeprefix("torch."),
            "pooling": "cls" if self._cross else "last",
            "normalize": False,
            "device": self.device,
            "engine": f"transformers {version('transformers')}",
        }

    def token_ids(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> list[list[int]]:
        return self._prompt.token_ids(pairs, instruction)

    def score(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        torch = self._torch
        ids = self.token_ids(pairs, instruction)
        out = np.empty(len(ids), dtype=np.float64)
        order = np.argsort([-len(seq) for seq in ids], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(ids), self._batch_size):
                rows = order[start : start + self._batch_size]
                batch = self._tokenizer.pad(
                    [{"input_ids": ids[i]} for i in rows], padding=True, return_tensors="pt"
                ).to(self.device)
                if self._cross:
                    out[rows] = self._model(**batch).logits[:, 0].double().cpu().numpy()
                    continue
                logits = self._model(**batch, use_cache=False, logits_to_keep=1).logits[:, -1, :]
                pair = torch.stack([logits[:, self._prompt.no], logits[:, self._prompt.yes]], dim=1).double()
                log_p = torch.log_softmax(pair, dim=1)  # log P(no), log P(yes) over the two tokens
                out[rows] = (log_p[:, 1] - log_p[:, 0]).cpu().numpy()
        return out


class VLLMReranker:
    """A reranker through vLLM's pooling runner, read without its sigmoid: Qwen3-Reranker by
    the sequence-classification conversion, a cross-encoder as the classifier it is. Options
    as for the vLLM embedding backend (max_length / max_model_len, kv_cache_memory_bytes,
    dtype, ...). `prefix_cache_hit_tokens`: prompt tokens vLLM read from its prefix cache."""

    def __init__(self, spec: ModelSpec) -> None:
        from embedlab.models.backends.vllm import raw_score_params, start_engine

        self.spec = spec
        self._cross = scorer_of(spec) == "cross-encoder"
        overrides = {} if self._cross else {"hf_overrides": dict(QWEN3_RERANK_OVERRIDES)}
        self._llm, self.facts = start_engine(spec, **overrides)
        self._params = raw_score_params()
        self._prompt = _prompt_ids(self._llm.get_tokenizer(), spec, int(self.facts["max_model_len"]), self._cross)
        self.prefix_cache_hit_tokens = 0

    def effective_settings(self) -> dict[str, Any]:
        """max_length (tokens), dtype, device, engine and prefix caching this reranker runs with."""
        return {
            "max_length": self._prompt.max_length,
            "dtype": self.facts["dtype"],
            "pooling": "cls" if self._cross else "last",
            "normalize": False,
            "device": self.facts["device"],
            "engine": f"vllm {self.facts['vllm_version']}",
            "prefix_caching": self.facts["prefix_caching"],
        }

    def token_ids(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> list[list[int]]:
        return self._prompt.token_ids(pairs, instruction)

    def score(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        ids = self.token_ids(pairs, instruction)
        if not ids:
            return np.zeros(0, dtype=np.float64)
        from embedlab.models.backends.vllm import cached_tokens

        outputs = self._llm.classify(
            [{"prompt_token_ids": seq} for seq in ids], pooling_params=self._params, use_tqdm=False
        )
        self.prefix_cache_hit_tokens += cached_tokens(outputs)
        return np.asarray([o.outputs.probs[0] for o in outputs], dtype=np.float64)


RERANK_BACKENDS = {"vllm": VLLMReranker, "transformers": TransformersReranker}


def load_reranker(spec: ModelSpec | str) -> Reranker:
    """Instantiate a reranker record with its backend ("vllm" or "transformers")."""
    spec = get_reranker(spec) if isinstance(spec, str) else spec
    scorer_of(spec)  # a bad scorer fails before any model loads
    if spec.backend not in RERANK_BACKENDS:
        raise UnknownNameError(
            f"reranker {spec.name!r}: backend must be one of {sorted(RERANK_BACKENDS)}, got {spec.backend!r}"
        )
    return RERANK_BACKENDS[spec.backend](spec)


__all__ = [
    "QWEN3_RERANK_BODY",
    "QWEN3_RERANK_PREFIX",
    "QWEN3_RERANK_SUFFIX",
    "RERANKERS",
    "SCORERS",
    "Reranker",
    "TransformersReranker",
    "VLLMReranker",
    "get_reranker",
    "load_reranker",
    "rerank_prompt",
    "scorer_of",
]
