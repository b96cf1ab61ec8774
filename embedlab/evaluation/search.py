"""Optional FAISS nearest-neighbour search (`settings: {search: {index: flat | hnsw | ivf}}`,
extra `faiss`): what an index would return for each query's top k, and its recall@k
against the exact top k over the same documents. An index searches the whole corpus, so
on a judged data set (each query ranked among its own candidates) the reference is the
exact whole-corpus top k, not the evaluation's judged-only top k: like with like, an exact
flat index has recall 1. The per-query metrics always come from the exact pass; an
approximate index only adds the columns `search_index`, `search_recall_at_10`,
`search_build_s` and `search_s`, so users choosing an index see what it costs them."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from embedlab.errors import ConfigError
from embedlab.evaluation.scoring import rank_embeddings
from embedlab.models.backends import l2_normalize
from embedlab.types import Relevance

SEARCH_INDEXES = ("flat", "hnsw", "ivf")


@dataclass(frozen=True)
class SearchSettings:
    """One FAISS index over unit-length document vectors (inner product = cosine).
    hnsw: `hnsw_m` links per node, `ef_construction`, `ef_search`; ivf: `nlist` cells
    (default 4·√n_docs, at most n_docs / 39) of which `nprobe` are searched."""

    index: str = "flat"
    k: int = 10
    hnsw_m: int = 32
    ef_construction: int = 40
    ef_search: int = 64
    nlist: int | None = None
    nprobe: int = 8

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SearchSettings:
        """From `RunSettings.search`; unknown keys or an unknown index raise ConfigError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"settings.search: unknown keys {unknown}, expected some of {sorted(known)}")
        out = cls(**raw)
        if out.index not in SEARCH_INDEXES:
            raise ConfigError(f"settings.search.index: expected one of {SEARCH_INDEXES}, got {out.index!r}")
        for name in ("k", "hnsw_m", "ef_construction", "ef_search", "nprobe"):
            if not isinstance(getattr(out, name), int) or getattr(out, name) < 1:
                raise ConfigError(f"settings.search.{name}: expected a positive integer, got {getattr(out, name)!r}")
        return out


def require_faiss():
    """The faiss module, or an ImportError naming the extra to install."""
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("settings.search needs FAISS: pip install 'embedlab[faiss]'") from exc
    return faiss


def build_index(doc_embeddings: np.ndarray, settings: SearchSettings):
    """A FAISS index holding the unit-length documents (it keeps its own copy)."""
    faiss = require_faiss()
    docs = np.ascontiguousarray(l2_normalize(doc_embeddings))
    n, dim = docs.shape
    if settings.index == "flat":
        index = faiss.IndexFlatIP(dim)
    elif settings.index == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings.ef_construction
        index.hnsw.efSearch = settings.ef_search
    else:
        nlist = settings.nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(docs)
        index.nprobe = min(settings.nprobe, nlist)
    index.add(docs)
    return index


def search_top_k(
    query_embeddings: np.ndarray, doc_embeddings: np.ndarray, settings: SearchSettings
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Top-k document indices and cosine scores per query from the index (-1 where it
    found fewer), with the build and search times, seconds."""
    start = time.perf_counter()
    index = build_index(doc_embeddings, settings)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    scores, ids = index.search(
        np.ascontiguousarray(l2_normalize(query_embeddings)), min(settings.k, len(doc_embeddings))
    )
    return ids.astype(np.int64), scores, build_s, time.perf_counter() - start


def search_overlap_at_k(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Mean share of each query's exact top-k documents that the index also returned in its
    top k (entries < 0 are empty slots)."""
    found, exact = found[:, :k], exact[:, :k]
    hits = [len(set(f[f >= 0]) & set(e[e >= 0])) / max(int((e >= 0).sum()), 1) for f, e in zip(found, exact)]
    return float(np.mean(hits)) if hits else float("nan")


def exact_top_ids(query_embeddings: np.ndarray, doc_embeddings: np.ndarray, k: int) -> np.ndarray:
    """The exact whole-corpus top-k document indices by cosine, best first, ties by lower
    index: the streamed evaluation's pass over every document, without qrels."""
    n_queries, n_docs = len(query_embeddings), len(doc_embeddings)
    none = np.zeros(0, dtype=np.int64)
    ranks = rank_embeddings(
        query_embeddings, doc_embeddings, Relevance(none, none, none, n_queries, n_docs, "all"), "all", depth=k
    )
    return ranks.top_ids[:, :k]


def search_columns(
    query_embeddings: np.ndarray, doc_embeddings: np.ndarray, exact_top: np.ndarray | None, raw: dict[str, Any]
) -> dict[str, Any]:
    """The runs-table columns of one search setting: index, recall@k against `exact_top`
    (the streamed exact pass's whole-corpus top ids; None on a judged data set, whose
    evaluation ranked candidates only: then the exact whole-corpus top k is computed here),
    build and search seconds."""
    settings = SearchSettings.from_dict(raw)
    ids, _, build_s, search_s = search_top_k(query_embeddings, doc_embeddings, settings)
    if exact_top is None:
        exact_top = exact_top_ids(query_embeddings, doc_embeddings, settings.k)
    return {
        "search_index": settings.index,
        f"search_recall_at_{settings.k}": search_overlap_at_k(ids, exact_top, settings.k),
        "search_build_s": build_s,
        "search_s": search_s,
    }
