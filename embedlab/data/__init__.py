"""Stage 1, data: data sets (the BEIR-style Dataset, loaders for bundled sets, BEIR folders,
trap files and CSV) and the trap categories with their document kinds."""

from embedlab.data.categories import CATEGORIES, CATEGORY_IDS, DOCUMENT_KINDS, get_category
from embedlab.data.datasets import Dataset, DatasetMeta, bundled_datasets, load_dataset

__all__ = [
    "CATEGORIES",
    "CATEGORY_IDS",
    "DOCUMENT_KINDS",
    "Dataset",
    "DatasetMeta",
    "bundled_datasets",
    "get_category",
    "load_dataset",
]
