"""embedlab: choose a text-embedding model by testing it on your own data.

`import embedlab` is light: no torch, no vLLM, no model is loaded until asked for."""

from embedlab.data.datasets import Dataset, DatasetMeta, bundled_datasets, load_dataset
from embedlab.errors import BackendUnavailableError, ConfigError, DataError, EmbedlabError, UnknownNameError
from embedlab.evaluation import Report, evaluate
from embedlab.models import DEFAULT_MODELS, MODELS, ModelSpec, get_model
from embedlab.types import RunSettings

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODELS",
    "MODELS",
    "BackendUnavailableError",
    "ConfigError",
    "DataError",
    "Dataset",
    "DatasetMeta",
    "EmbedlabError",
    "ModelSpec",
    "Report",
    "RunSettings",
    "UnknownNameError",
    "bundled_datasets",
    "evaluate",
    "get_model",
    "load_dataset",
]
