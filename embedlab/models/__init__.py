"""Stage 2, models: model records (data: name, backend, prompts, pooling, ...) and the
backends that load them (`embedlab.models.backends`, imported lazily: torch and vLLM load
only when a model of theirs is asked for)."""

from embedlab.models.records import DEFAULT_MODELS, MODELS, ModelSpec, get_model, prompt_warnings, spec_from_config

__all__ = ["DEFAULT_MODELS", "MODELS", "ModelSpec", "get_model", "prompt_warnings", "spec_from_config"]
