"""Stage 2, models: the model spec (`spec`: a record and its prompt formatting, code), the
registry (`registry`: the records, data), model folders (`folders`: what a folder's files say and
which record it holds), resolution (`resolve`: a name, `NAME=PATH`, folder, hub id or config entry
to a record), and the backends that load them (`embedlab.models.backends`, imported lazily: torch
and vLLM load only when a model of theirs is asked for)."""

from embedlab.models.folders import match_folder, read_folder, spec_from_folder
from embedlab.models.registry import DEFAULT_MODELS, MODELS
from embedlab.models.resolve import check_served, get_model, parse_model_arg, prompt_warnings, spec_from_config
from embedlab.models.spec import Kind, ModelSpec

__all__ = [
    "DEFAULT_MODELS",
    "MODELS",
    "Kind",
    "ModelSpec",
    "check_served",
    "get_model",
    "load_backend",
    "match_folder",
    "parse_model_arg",
    "prompt_warnings",
    "read_folder",
    "spec_from_config",
    "spec_from_folder",
    "weights_path",
]


def load_backend(spec: ModelSpec, dimensions: int | None = None):
    """The backend of `spec` loaded (an Encoder, bound to MRL `dimensions` when given, or a
    Scorer that scores the corpus itself)."""
    from embedlab.models import backends

    return backends.load_backend(spec, dimensions)


def weights_path(spec: ModelSpec) -> str:
    """The local folder of `spec`'s weights, found as its backend would (downloading when the record allows)."""
    from embedlab.models.backends import hub

    return hub.resolve_model_path(spec)
