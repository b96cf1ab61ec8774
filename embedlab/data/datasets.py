"""Data sets: queries, corpus, graded qrels, query categories and document kinds.

Reads and writes the BEIR layout (`corpus.jsonl`, `queries.jsonl`, `qrels/test.tsv`, plus
an optional `meta.json`), the one-file trap form (YAML or JSONL, see docs/trap-format.md)
and a CSV of (query, positive, category). Every loader validates the whole file before it
returns, and raises one DataError naming file, line and field on the first problem.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.errors import DataError, UnknownNameError

META_KEYS = ("name", "description", "language", "license", "instruction", "instruction_zh", "source", "version")
CANDIDATE_MODES = ("all", "judged")
TRAP_SETS: tuple[str, ...] = ("seed", "traps-zh")  # the bundled trap sets: what a run and the reports use by default


@dataclass(frozen=True)
class DatasetMeta:
    """What a data set is and how to evaluate it.

    `instruction` is the English task instruction that models taking one get by default
    (Qwen3-Embedding's model card advises English instructions even for multilingual
    data); `instruction_zh` the same task in Chinese ("" when none), for comparisons.
    `version` labels the data set's revision ("" when unversioned).
    `candidates="judged"` means each query ranks only the documents its qrels judge
    (a pair or reranking task); `"all"` ranks the whole corpus.
    """

    name: str
    description: str = ""
    language: str = "zh"
    license: str = ""
    source: str = ""
    instruction: str = ""
    instruction_zh: str = ""
    version: str = ""
    candidates: str = "all"
    main_score: str = "mrr"

    def to_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Dataset:
    """A retrieval data set. Dicts keep file order; ids are strings; grades are ints
    (0 = judged non-relevant, >0 relevant)."""

    meta: DatasetMeta
    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]
    categories: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)

    # ---- views -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def instruction(self) -> str:
        """The English task instruction (what models get by default)."""
        return self.meta.instruction

    @property
    def instruction_zh(self) -> str:
        """The Chinese task instruction ("" when none)."""
        return self.meta.instruction_zh

    @property
    def query_ids(self) -> list[str]:
        """Ids of the queries that are evaluated: those with at least one relevant doc."""
        return [q for q in self.queries if any(g > 0 for g in self.qrels.get(q, {}).values())]

    @property
    def doc_ids(self) -> list[str]:
        return list(self.corpus)

    def document_texts(self) -> list[str]:
        """Corpus texts in `doc_ids` order, title and text joined by a space (BEIR/MTEB)."""
        return joined_texts(self.corpus, self.titles)

    def query_texts(self) -> list[str]:
        return [self.queries[q] for q in self.query_ids]

    def gains(self, query_ids: list[str] | None = None) -> np.ndarray:
        """Dense relevance grades, shape (n_queries, n_docs), int16, in id order."""
        query_ids = self.query_ids if query_ids is None else query_ids
        index = {d: i for i, d in enumerate(self.corpus)}
        out = np.zeros((len(query_ids), len(index)), dtype=np.int16)
        for row, q in enumerate(query_ids):
            for d, g in self.qrels.get(q, {}).items():
                out[row, index[d]] = g
        return out

    def judged_docs(self, query_id: str) -> list[tuple[str, int]]:
        """(document, grade) of every document judged for the query, the highest grade first
        (equal grades in qrels order)."""
        return sorted(self.qrels.get(query_id, {}).items(), key=lambda item: -item[1])

    def answer_of(self, query_id: str) -> str | None:
        """The query's best-graded relevant document (the first in qrels order among equals);
        None when it judges none relevant."""
        judged = self.judged_docs(query_id)
        return judged[0][0] if judged and judged[0][1] > 0 else None

    def kind_for(self, query_id: str, doc_id: str) -> str:
        """A document's kind as one query sees it (`categories.kind_for_query`: "answer" only
        when it answers that query), "unjudged" for a document without a kind."""
        from embedlab.data.categories import kind_for_query

        relevant = self.qrels.get(query_id, {}).get(doc_id, 0) > 0
        return kind_for_query(self.kinds.get(doc_id, ""), relevant) or "unjudged"

    def judged(self, query_ids: list[str] | None = None) -> np.ndarray:
        """Boolean mask (n_queries, n_docs) of judged pairs, for `candidates="judged"`."""
        query_ids = self.query_ids if query_ids is None else query_ids
        index = {d: i for i, d in enumerate(self.corpus)}
        out = np.zeros((len(query_ids), len(index)), dtype=bool)
        for row, q in enumerate(query_ids):
            for d in self.qrels.get(q, {}):
                out[row, index[d]] = True
        return out

    def fingerprint(self) -> str:
        """SHA-256 of the content (ids, texts, qrels, categories, kinds, both instructions)."""
        digest = hashlib.sha256()
        payload = {
            "queries": self.queries,
            "corpus": self.corpus,
            "titles": self.titles,
            "qrels": self.qrels,
            "categories": self.categories,
            "kinds": self.kinds,
            "instruction": self.meta.instruction,
            "instruction_zh": self.meta.instruction_zh,
            "candidates": self.meta.candidates,
        }
        digest.update(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode())
        return digest.hexdigest()

    def queries_frame(self):
        """Queries as a DataFrame: query_id, text, category, n_relevant."""
        import pandas as pd

        return pd.DataFrame(
            {
                "query_id": list(self.queries),
                "text": list(self.queries.values()),
                "category": [self.categories.get(q) for q in self.queries],
                "n_relevant": [sum(g > 0 for g in self.qrels.get(q, {}).values()) for q in self.queries],
            }
        )

    def corpus_frame(self):
        """Corpus as a DataFrame: doc_id, title, text, kind."""
        import pandas as pd

        return pd.DataFrame(
            {
                "doc_id": list(self.corpus),
                "title": [self.titles.get(d) for d in self.corpus],
                "text": list(self.corpus.values()),
                "kind": [self.kinds.get(d) for d in self.corpus],
            }
        )

    def __repr__(self) -> str:
        n_qrels = sum(len(v) for v in self.qrels.values())
        cats = len(set(self.categories.values()))
        return (
            f"Dataset({self.name!r}: {len(self.query_ids)} queries, {len(self.corpus)} docs, "
            f"{n_qrels} qrels, {cats} categories, candidates={self.meta.candidates!r})"
        )

    def _repr_html_(self) -> str:
        return f"<p><b>{self.name}</b>: {self.meta.description}</p>" + (
            self.queries_frame().head(20).to_html(index=False)
        )

    # ---- transformations ---------------------------------------------------------------
    def sample(self, n_queries: int, seed: int = 0) -> Dataset:
        """A copy keeping `n_queries` queries drawn without replacement (seeded); the
        corpus is kept whole so the retrieval stays as hard as the full set."""
        ids = self.query_ids
        if n_queries >= len(ids):
            return self
        rng = np.random.default_rng(seed)
        keep = set(rng.choice(len(ids), size=n_queries, replace=False).tolist())
        chosen = [q for i, q in enumerate(ids) if i in keep]
        return replace(
            self,
            meta=replace(self.meta, name=f"{self.meta.name}[{n_queries}]"),
            queries={q: self.queries[q] for q in chosen},
            qrels={q: dict(self.qrels[q]) for q in chosen},
            categories={q: self.categories[q] for q in chosen if q in self.categories},
        )

    # ---- constructors ------------------------------------------------------------------
    @classmethod
    def from_beir(cls, folder: str | Path, split: str = "test") -> Dataset:
        """Load a folder in BEIR layout; `meta.json` (embedlab's) is optional."""
        folder = Path(folder)
        meta_path = folder / "meta.json"
        meta_fields: dict[str, Any] = {"name": folder.name}
        if meta_path.exists():
            text = _read_text(meta_path)
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(meta_path, f"invalid JSON ({exc.msg})", line=exc.lineno) from exc
            if not isinstance(raw, dict):
                raise DataError(meta_path, "expected a JSON object")
            meta_fields.update({k: v for k, v in raw.items() if k in DatasetMeta.__dataclass_fields__})
        meta = _make_meta(meta_fields, meta_path)

        corpus, titles, kinds = read_corpus(folder / "corpus.jsonl")

        queries: dict[str, str] = {}
        categories: dict[str, str] = {}
        queries_path = folder / "queries.jsonl"
        for line_no, record in _read_jsonl(queries_path):
            query_id = _require_id(record, "_id", queries_path, line_no)
            if query_id in queries:
                raise DataError(queries_path, f"duplicate query id {query_id!r}", line=line_no, field="_id")
            queries[query_id] = _require_text(record, "text", queries_path, line_no)
            if record.get("category"):
                categories[query_id] = _optional_str(record, "category", queries_path, line_no)

        qrels_path = folder / "qrels" / f"{split}.tsv"
        qrels = _read_qrels(qrels_path, queries, corpus)
        return cls(meta, queries, corpus, qrels, categories, kinds, titles)

    def to_beir(self, folder: str | Path, split: str = "test") -> Path:
        """Write in BEIR layout (plus meta.json). Written to a temporary folder first and
        moved into place, so a failure never leaves a half-written data set."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            with open(tmp / "corpus.jsonl", "w", encoding="utf-8") as fh:
                for d, text in self.corpus.items():
                    rec: dict[str, str] = {"_id": d, "text": text}
                    if d in self.titles:
                        rec["title"] = self.titles[d]
                    if d in self.kinds:
                        rec["kind"] = self.kinds[d]
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            with open(tmp / "queries.jsonl", "w", encoding="utf-8") as fh:
                for q, text in self.queries.items():
                    rec = {"_id": q, "text": text}
                    if q in self.categories:
                        rec["category"] = self.categories[q]
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            (tmp / "qrels").mkdir()
            with open(tmp / "qrels" / f"{split}.tsv", "w", encoding="utf-8", newline="") as fh:
                fh.write("query-id\tcorpus-id\tscore\n")
                for q, docs in self.qrels.items():
                    for d, g in docs.items():
                        fh.write(f"{q}\t{d}\t{g}\n")
            with open(tmp / "meta.json", "w", encoding="utf-8") as fh:
                json.dump(self.meta.to_dict(), fh, ensure_ascii=False, indent=2)
            if folder.exists():
                backup = folder.with_name(folder.name + ".old")
                os.replace(folder, backup)
                os.replace(tmp, folder)
                shutil.rmtree(backup)
            else:
                os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder

    @classmethod
    def from_trap_file(cls, path: str | Path) -> Dataset:
        """Load the one-file trap form (.yaml/.yml or .jsonl; docs/trap-format.md)."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            header, records = _read_trap_yaml(path)
        elif path.suffix == ".jsonl":
            header, records = _read_trap_jsonl(path)
        else:
            raise DataError(path, "expected a .yaml, .yml or .jsonl trap file")
        return _build_trap_dataset(path, header, records)

    @classmethod
    def from_pairs_csv(
        cls, path: str | Path, name: str | None = None, instruction: str = "", instruction_zh: str = ""
    ) -> Dataset:
        """Load a CSV with a header and columns `query`, `positive`, optional `category`;
        `instruction` (English) and `instruction_zh` (Chinese) are the task instructions.

        Repeated query texts become one query with several relevant documents; repeated
        positives become one document."""
        path = Path(path)
        text = _read_text(path)
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        for column in ("query", "positive"):
            if column not in header:
                raise DataError(
                    path,
                    f"missing column {column!r}; expected a header with query,positive[,category]",
                    line=1,
                    field=column,
                )
        queries: dict[str, str] = {}
        corpus: dict[str, str] = {}
        qrels: dict[str, dict[str, int]] = {}
        categories: dict[str, str] = {}
        query_by_text: dict[str, str] = {}
        doc_by_text: dict[str, str] = {}
        for row in reader:
            line_no = reader.line_num
            if None in row:
                raise DataError(path, f"more cells than the {len(header)} header columns", line=line_no)
            query = (row.get("query") or "").strip()
            positive = (row.get("positive") or "").strip()
            if not query:
                raise DataError(path, "empty text; expected a non-empty query", line=line_no, field="query")
            if not positive:
                raise DataError(path, "empty text; expected a non-empty document", line=line_no, field="positive")
            q = query_by_text.setdefault(query, f"q{len(query_by_text) + 1}")
            d = doc_by_text.setdefault(positive, f"d{len(doc_by_text) + 1}")
            queries[q] = query
            corpus[d] = positive
            qrels.setdefault(q, {})[d] = 1
            category = (row.get("category") or "").strip()
            if category:
                categories[q] = category
        if not queries:
            raise DataError(path, "no rows; expected at least one (query, positive) row")
        meta = DatasetMeta(
            name=name or path.stem, instruction=instruction, instruction_zh=instruction_zh, source=str(path)
        )
        return cls(meta, queries, corpus, qrels, categories, {}, {})


# ---- registry of bundled sets ----------------------------------------------------------


def data_dir() -> Path:
    """Where the bundled data sets live: `embedlab/_data` in a wheel, `data/` in a checkout.
    `EMBEDLAB_DATA_DIR` overrides both."""
    env = os.environ.get("EMBEDLAB_DATA_DIR")
    if env:
        return Path(env)
    packaged = Path(__file__).resolve().parents[1] / "_data"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "data"


def bundled_datasets() -> list[str]:
    """Names of the data sets shipped in `data_dir()`."""
    root = data_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _dataset_file(p) is not None)


def read_corpus(path: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """A BEIR `corpus.jsonl`: texts, titles and kinds by document id, in file order. Errors
    name the file, line and field (a duplicate id, a missing or empty text)."""
    corpus: dict[str, str] = {}
    titles: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for line_no, record in _read_jsonl(path):
        doc_id = _require_id(record, "_id", path, line_no)
        if doc_id in corpus:
            raise DataError(path, f"duplicate document id {doc_id!r}", line=line_no, field="_id")
        corpus[doc_id] = _require_text(record, "text", path, line_no)
        if record.get("title"):
            titles[doc_id] = _optional_str(record, "title", path, line_no)
        if record.get("kind"):
            kinds[doc_id] = _optional_str(record, "kind", path, line_no)
    return corpus, titles, kinds


def corpus_texts(path: str | Path) -> list[str]:
    """The texts of a BEIR `corpus.jsonl` alone, in file order and joined exactly as a data
    set's corpus is (`Dataset.document_texts`)."""
    corpus, titles, _ = read_corpus(Path(path))
    return joined_texts(corpus, titles)


def joined_texts(corpus: Mapping[str, str], titles: Mapping[str, str]) -> list[str]:
    """Each document's text in `corpus` order, its title (if any) and text joined by a space
    (BEIR/MTEB)."""
    return [f"{titles[d]} {t}".strip() if titles.get(d) else t for d, t in corpus.items()]


def load_dataset(name_or_path: str | Path) -> Dataset:
    """A bundled name (`seed`, `traps-zh`, ...), a folder in BEIR layout, a trap file
    (.yaml/.jsonl) or a pairs CSV."""
    path = Path(name_or_path)
    if not path.exists():
        candidate = data_dir() / str(name_or_path)
        if candidate.is_dir():
            path = candidate
        else:
            known = ", ".join(bundled_datasets()) or "none"
            raise UnknownNameError(
                f"data set {str(name_or_path)!r} is neither a bundled name ({known}) nor an existing path"
            )
    if path.is_dir():
        source = _dataset_file(path)
        if source is None:
            raise DataError(
                path, "expected corpus.jsonl + queries.jsonl + qrels/test.tsv (BEIR) or one .yaml/.jsonl trap file"
            )
        path = source
    if path.name == "corpus.jsonl":
        return Dataset.from_beir(path.parent)
    if path.suffix == ".csv":
        return Dataset.from_pairs_csv(path)
    return Dataset.from_trap_file(path)


def _dataset_file(folder: Path) -> Path | None:
    if (folder / "corpus.jsonl").exists():
        return folder / "corpus.jsonl"
    candidates = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml"), *folder.glob("*.jsonl")])
    return candidates[0] if len(candidates) == 1 else None


# ---- low-level readers -----------------------------------------------------------------


def _read_text(path: Path) -> str:
    """Whole file as UTF-8; non-UTF-8 bytes raise a DataError with their line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            path, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); expected UTF-8 text", line=line
        ) from None


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    text = _read_text(path)
    records = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                path, f"broken JSON ({exc.msg} at column {exc.colno}); expected one JSON object per line", line=line_no
            ) from None
        if not isinstance(record, dict):
            raise DataError(path, f"expected a JSON object, got {type(record).__name__}", line=line_no)
        records.append((line_no, record))
    if not records:
        raise DataError(path, "empty file; expected at least one JSON line")
    return iter(records)


def _require_id(record: Mapping[str, Any], key: str, path: Path, line: int | None) -> str:
    if key not in record:
        raise DataError(path, "missing; expected a string or integer id", line=line, field=key)
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise DataError(path, f"expected a non-empty string or integer id, got {value!r}", line=line, field=key)
    return str(value).strip()


def _require_text(record: Mapping[str, Any], key: str, path: Path, line: int | None) -> str:
    if key not in record:
        raise DataError(path, "missing; expected non-empty text", line=line, field=key)
    value = record[key]
    if not isinstance(value, str):
        raise DataError(path, f"expected text (a string), got {type(value).__name__}", line=line, field=key)
    if not value.strip():
        raise DataError(path, "empty text; expected non-empty text", line=line, field=key)
    return value.strip()


def _optional_str(record: Mapping[str, Any], key: str, path: Path, line: int | None) -> str:
    value = record[key]
    if not isinstance(value, str):
        raise DataError(path, f"expected a string, got {type(value).__name__}", line=line, field=key)
    return value.strip()


def _make_meta(fields: dict[str, Any], path: Path) -> DatasetMeta:
    fields = dict(fields)
    version = fields.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        fields["version"] = str(version)  # `version: 2` in YAML / JSON is a number
    for key, value in fields.items():
        if not isinstance(value, str):
            raise DataError(path, f"expected a string, got {type(value).__name__}", field=key)
    if fields.get("candidates", "all") not in CANDIDATE_MODES:
        raise DataError(path, f"expected one of {CANDIDATE_MODES}, got {fields['candidates']!r}", field="candidates")
    return DatasetMeta(**fields)


def _read_qrels(path: Path, queries: Mapping[str, str], corpus: Mapping[str, str]) -> dict[str, dict[str, int]]:
    text = _read_text(path)
    qrels: dict[str, dict[str, int]] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.rstrip("\r").split("\t")
        if line_no == 1 and cells[0] in ("query-id", "query_id", "qid"):
            continue
        if len(cells) != 3:
            raise DataError(
                path, f"expected 3 tab-separated cells (query-id, corpus-id, score), got {len(cells)}", line=line_no
            )
        q, d, score = (c.strip() for c in cells)
        if q not in queries:
            raise DataError(path, f"unknown query id {q!r} (not in queries.jsonl)", line=line_no, field="query-id")
        if d not in corpus:
            raise DataError(path, f"unknown document id {d!r} (not in corpus.jsonl)", line=line_no, field="corpus-id")
        try:
            grade = int(score)
        except ValueError:
            raise DataError(
                path, f"expected an integer relevance grade, got {score!r}", line=line_no, field="score"
            ) from None
        if grade < 0:
            raise DataError(path, f"expected a grade >= 0, got {grade}", line=line_no, field="score")
        if d in qrels.get(q, {}):
            raise DataError(path, f"duplicate judgement for ({q!r}, {d!r})", line=line_no)
        qrels.setdefault(q, {})[d] = grade
    if not any(g > 0 for docs in qrels.values() for g in docs.values()):
        raise DataError(path, "no relevant judgement (score > 0); expected at least one")
    return qrels


# ---- the one-file trap form ------------------------------------------------------------


class _LineDict(dict):
    """A dict that remembers the 1-based line where its YAML mapping started."""

    line: int | None = None


def _yaml_loader():
    import yaml

    class Loader(
        getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    ):  # libyaml when built in: ~8x faster, same values and lines
        pass

    def construct_mapping(loader, node, deep=False):
        mapping = _LineDict(yaml.SafeLoader.construct_mapping(loader, node, deep=True))
        mapping.line = node.start_mark.line + 1
        return mapping

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


def _read_trap_yaml(path: Path) -> tuple[dict[str, Any], list[tuple[int | None, dict[str, Any]]]]:
    import yaml

    text = _read_text(path)
    try:
        data = yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(
            path, f"invalid YAML ({getattr(exc, 'problem', exc)})", line=mark.line + 1 if mark else None
        ) from None
    if not isinstance(data, dict):
        raise DataError(path, "expected a mapping with a 'queries' list at the top")
    queries = data.get("queries")
    if not isinstance(queries, list) or not queries:
        raise DataError(
            path, "expected a non-empty list of query records", line=getattr(data, "line", None), field="queries"
        )
    header = {k: v for k, v in data.items() if k != "queries"}
    records = []
    for item in queries:
        if not isinstance(item, dict):
            raise DataError(path, f"expected a query record (mapping), got {item!r}", field="queries")
        records.append((getattr(item, "line", None), item))
    return header, records


def _read_trap_jsonl(path: Path) -> tuple[dict[str, Any], list[tuple[int | None, dict[str, Any]]]]:
    header: dict[str, Any] = {}
    records: list[tuple[int | None, dict[str, Any]]] = []
    for line_no, record in _read_jsonl(path):
        if "documents" in record or (record and set(record) <= set(META_KEYS) | {"candidates", "main_score"}):
            for key, value in record.items():
                if key == "documents":
                    header.setdefault("documents", [])
                    if not isinstance(value, list):
                        raise DataError(path, "expected a list of documents", line=line_no, field="documents")
                    header["documents"].extend((line_no, v) for v in value)
                else:
                    header[key] = value
        else:
            records.append((line_no, record))
    return header, records


def _build_trap_dataset(
    path: Path, header: dict[str, Any], records: list[tuple[int | None, dict[str, Any]]]
) -> Dataset:
    meta_fields = {k: header[k] for k in (*META_KEYS, "candidates", "main_score") if k in header}
    meta_fields.setdefault("name", path.parent.name if path.stem in ("traps", "dataset") else path.stem)
    meta_fields.setdefault("main_score", "top1")
    meta = _make_meta(meta_fields, path)

    corpus: dict[str, str] = {}
    kinds: dict[str, str] = {}
    doc_lines: dict[str, int | None] = {}

    def add_doc(doc_id: str, text: str, kind: str | None, line: int | None) -> None:
        if doc_id in corpus:
            raise DataError(
                path, f"duplicate document id {doc_id!r} (first at line {doc_lines[doc_id]})", line=line, field="id"
            )
        corpus[doc_id] = text
        doc_lines[doc_id] = line
        if kind:
            kinds[doc_id] = kind

    for item in header.get("documents", []) or []:
        line, doc = item if isinstance(item, tuple) else (getattr(item, "line", None), item)
        if not isinstance(doc, dict):
            raise DataError(path, f"expected a document mapping, got {doc!r}", line=line, field="documents")
        doc_id = _require_id(doc, "id", path, line)
        kind = _optional_str(doc, "kind", path, line) if doc.get("kind") else None
        add_doc(doc_id, _require_text(doc, "text", path, line), kind, line)

    queries: dict[str, str] = {}
    categories: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    pending_relevant: list[tuple[str, str, int, int | None]] = []
    query_lines: dict[str, int | None] = {}
    for line, rec in records:
        q = _require_id(rec, "id", path, line)
        if q in queries:
            raise DataError(path, f"duplicate query id {q!r} (first at line {query_lines[q]})", line=line, field="id")
        query_lines[q] = line
        queries[q] = _require_text(rec, "text", path, line)
        if rec.get("category"):
            categories[q] = _optional_str(rec, "category", path, line)
        qrels[q] = {}
        if "answer" in rec:
            doc_id = f"{q}-a"
            add_doc(doc_id, _require_text(rec, "answer", path, line), "answer", line)
            qrels[q][doc_id] = 1
        distractors = rec.get("distractors", []) or []
        if not isinstance(distractors, list):
            raise DataError(path, "expected a list of {kind, text} mappings", line=line, field="distractors")
        for i, dis in enumerate(distractors, start=1):
            dline = getattr(dis, "line", line)
            if not isinstance(dis, dict):
                raise DataError(
                    path, f"expected a {{kind, text}} mapping, got {dis!r}", line=dline, field="distractors"
                )
            if not dis.get("kind"):
                raise DataError(
                    path, "missing; expected a distractor kind (e.g. other-sense, topical)", line=dline, field="kind"
                )
            add_doc(
                f"{q}-d{i}", _require_text(dis, "text", path, dline), _optional_str(dis, "kind", path, dline), dline
            )
            qrels[q][f"{q}-d{i}"] = 0
        relevant = rec.get("relevant", [])
        if isinstance(relevant, dict):
            pairs = list(relevant.items())
        elif isinstance(relevant, list):
            pairs = [(d, 1) for d in relevant]
        else:
            raise DataError(
                path, "expected a list of document ids or a mapping id -> grade", line=line, field="relevant"
            )
        for d, g in pairs:
            if isinstance(g, bool) or not isinstance(g, int) or g < 0:
                raise DataError(
                    path, f"expected an integer grade >= 0 for {d!r}, got {g!r}", line=line, field="relevant"
                )
            pending_relevant.append((q, str(d), g, line))
        if "answer" not in rec and not relevant:
            raise DataError(
                path, "query has neither 'answer' nor 'relevant'; expected one of them", line=line, field="answer"
            )
    for q, d, g, line in pending_relevant:
        if d not in corpus:
            raise DataError(path, f"unknown document id {d!r}", line=line, field="relevant")
        qrels[q][d] = g
    if not queries:
        raise DataError(path, "no query records")
    for q in queries:
        if not any(g > 0 for g in qrels[q].values()):
            raise DataError(
                path, f"query {q!r} has no relevant document (grade > 0)", line=query_lines[q], field="relevant"
            )
    return Dataset(meta, queries, corpus, qrels, categories, kinds, {})
