"""A model folder: what its own files say (config.json, the sentence-transformers files), which
registered record it holds (by name, or by config.json shape with the record's pooling and query
prompt), and a record for a folder no record matches."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError, RecordMismatchWarning
from embedlab.files import read_json, read_json_object
from embedlab.models.registry import MODELS, SHAPES
from embedlab.models.spec import ModelSpec

log = logging.getLogger("embedlab.models.folders")

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
    config = read_json_object(folder / "config.json")
    facts: dict[str, Any] = {"config": config}
    transformer_dir = folder
    modules_path = folder / "modules.json"
    if modules_path.is_file():
        modules = read_json(modules_path)
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
                cfg = read_json_object(pool_file)
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
                out = read_json_object(module_dir / "config.json").get("out_features")
                if isinstance(out, int):
                    facts["dim"] = out
            elif kind == "Transformer":
                transformer_dir = module_dir
    st_config = read_json_object(folder / "config_sentence_transformers.json")
    prompts = st_config.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        raise ConfigError(
            f"{folder / 'config_sentence_transformers.json'}: field 'prompts': expected a mapping of name -> prompt "
            "string"
        )
    facts["prompts"] = dict(prompts)
    facts["default_prompt_name"] = st_config.get("default_prompt_name") or None
    bert_config = read_json_object(transformer_dir / "sentence_bert_config.json")
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
    """The folder's query prompt is the record's: none where the record has none; where it has
    one, a query prompt of the folder is the record's template before `{text}`, whatever its
    instruction (Qwen3-Embedding's "...\\nQuery:" is not harrier's "...\\nQuery: ")."""
    template = record.prompts.get("query", "{text}")
    if is_plain(template):
        return not facts.any_query_prompt()
    if not template.endswith("{text}"):
        return False
    pattern = re.escape(template.removesuffix("{text}")).replace(re.escape("{instruction}"), ".*")
    named = [facts.query_prompt() or ""] + [p for k, p in facts.prompts.items() if "query" in k.lower()]
    return any(prompt and re.fullmatch(pattern, prompt, flags=re.DOTALL) for prompt in named)


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
    config = read_json_object(folder / "config.json")
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
            f"{what} and its sentence-transformers pooling {facts.pooling!r} and query prompt are record "
            f"{fitting[0]!r}'s",
            by="shape",
        )
    if not fitting:
        return FolderMatch(
            None,
            f"{what} has the shape of {', '.join(shaped)}, but its pooling {facts.pooling!r} or query prompt "
            f"{facts.any_query_prompt()!r} differ from the record's",
        )
    return FolderMatch(None, f"{what} fits several records ({', '.join(fitting)}): ambiguous")


def shape_check(record: str, folder: str) -> None:
    """Warn when a folder given for `record` has another architecture in its config.json."""
    path = Path(folder).expanduser()
    shape = SHAPES.get(record)
    if shape is None or not (path / "config.json").is_file():
        return
    config = read_json_object(path / "config.json")
    if not shape.matches(config):
        warnings.warn(
            f"model {record!r} at {folder}: config.json says {config.get('model_type')}, hidden_size "
            f"{config.get('hidden_size')}, {config.get('num_hidden_layers')} layers, not the record's "
            f"{shape.describe()}; the record's prompts, pooling and end token are used as given",
            RecordMismatchWarning,
            stacklevel=3,
        )


def record_at(record: ModelSpec, path: str, reason: str) -> ModelSpec:
    """A registered record pointed at other weights (the hub revision no longer applies)."""
    return replace(record, path=path, revision=None, description=f"{record.description} [{reason}]".strip())


def local_path(path: str) -> str:
    """An existing local folder as an absolute path (so it works from any working folder)."""
    local = Path(path).expanduser()
    return str(local.absolute()) if local.is_dir() else path


def _template(prompt: str | None) -> str:
    """A sentence-transformers prompt as a record template: the prompt prepended to the text."""
    return (prompt or "").replace("{", "{{").replace("}", "}}") + "{text}"


def is_plain(template: str) -> bool:
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
            f"{source}{where}: pooling {chosen!r} is not supported; expected one of {POOLINGS} (give `pooling:` to "
            "choose)"
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
            shape_check(match.record, str(folder))
        return record_at(MODELS[match.record], str(folder.absolute()), f"matched: {match.reason}")
    log.info(
        "model folder %s: no registered record (%s); reading its sentence-transformers files", folder, match.reason
    )
    return spec_from_folder(folder, backend=backend or "st", pooling=pooling, why_unmatched=match.reason)
