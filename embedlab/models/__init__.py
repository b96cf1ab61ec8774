"""Stage 2, models: model records (data: name, backend, prompts, pooling, ...) and the
backends that load them (`embedlab.models.backends`, imported lazily: torch and vLLM load
only when a model of theirs is asked for)."""

from embedlab.models.records import DEFAULT_MODELS, MODELS, ModelSpec, get_model, prompt_warnings, spec_from_config

__all__ = [
    "DEFAULT_MODELS", "MODELS", "ModelSpec", "get_model", "load_backend", "prompt_warnings", "segment", "spec_from_config",
    "weights_path",
]


def load_backend(spec: ModelSpec):
    """The backend of `spec` loaded (an Encoder, or a Scorer that scores the corpus itself)."""
    from embedlab.models import backends

    return backends.load_backend(spec)


def segment(texts: list[str]) -> list[list[str]]:
    """The words of each text as the BM25 baseline splits them (jieba search mode)."""
    from embedlab.models.backends import lexical

    return lexical.segment(texts)


def weights_path(spec: ModelSpec) -> str:
    """The local folder of `spec`'s weights, found as its backend would (downloading when the record allows)."""
    from embedlab.models.backends import hub

    return hub.resolve_model_path(spec)
