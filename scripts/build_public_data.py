#!/usr/bin/env python3
"""Build embedlab's public Chinese evaluation sets from the raw files in shared/data.

Sets written (BEIR layout plus meta.json, README.md and the source licence), each in
<out>/<name>/:

  cmrc2018   question -> its Wikipedia paragraph (CMRC 2018 dev)            mrr, all docs
  idioms     Xinhua explanation -> its chengyu (no shared character)         mrr, all docs
  csl        paper title -> its abstract (CSL ts_test)                       mrr, all docs
  pawsx-zh   sentence -> paraphrase vs adversarial non-paraphrase (PAWS-X)   top1, judged docs

Standard library only, deterministic (fixed seed 0). Usage:

    python scripts/build_public_data.py [--src ../shared/data] [--out data] [--only NAME ...]

The raw sources, their commits and licences are described in <src>/SOURCES.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import shutil
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED = 0
MAX_SET_BYTES = 3_000_000  # budget for corpus.jsonl + queries.jsonl + qrels/test.tsv
BUILT_BY = "scripts/build_public_data.py"

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
FOUR_HAN = re.compile(f"^[{HAN}]{{4}}$")

SOURCES = {
    "cmrc2018": {
        "repo": "https://github.com/ymcui/cmrc2018",
        "commit": "c0eb1b6",
        "file": "squad-style-data/cmrc2018_dev.json",
    },
    "idioms": {
        "repo": "https://github.com/oovm/IdiomSolitaire",
        "commit": "46919bf",
        "file": "projects/external/database.csv",
        "derived_from": "https://github.com/pwxcoo/chinese-xinhua data/idiom.json",
    },
    "csl": {
        "repo": "https://github.com/ydli-ai/CSL",
        "commit": "0f1ac06",
        "file": "benchmark/ts/ts_test.tsv",
    },
    "pawsx-zh": {
        "repo": "https://github.com/zejunwang1/CSTS",
        "commit": "2e7eeed",
        "file": "PAWS-X/test_2k.tsv",
        "derived_from": "https://github.com/google-research-datasets/paws (PAWS-X zh test)",
    },
}


def source_string(name: str) -> str:
    s = SOURCES[name]
    text = f"{s['repo']} @ {s['commit']}, {s['file']}"
    if "derived_from" in s:
        text += f" (derived from {s['derived_from']})"
    return text


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def clean(text: str) -> str:
    return text.strip()


def normalise(text: str) -> str:
    """Key for near-identity: NFKC, lower case, whitespace and punctuation removed."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if not (ch.isspace() or unicodedata.category(ch).startswith(("P", "S"))))


def dump_jsonl(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def jsonl_bytes(records: list[dict]) -> int:
    return sum(len((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8")) for r in records)


def qrels_bytes(qrels: list[tuple[str, str, int]]) -> int:
    return len("query-id\tcorpus-id\tscore\n".encode()) + sum(len(f"{q}\t{d}\t{s}\n".encode("utf-8")) for q, d, s in qrels)


def validate(name: str, corpus: list[dict], queries: list[dict], qrels: list[tuple[str, str, int]]) -> None:
    """Fail loudly on anything embedlab's loader would reject, and on silent problems."""
    doc_ids = [d["_id"] for d in corpus]
    q_ids = [q["_id"] for q in queries]
    assert len(doc_ids) == len(set(doc_ids)), f"{name}: duplicate document ids"
    assert len(q_ids) == len(set(q_ids)), f"{name}: duplicate query ids"
    for rec in corpus + queries:
        assert rec["_id"] and rec["_id"] == rec["_id"].strip() and "\t" not in rec["_id"], (name, rec["_id"])
        assert rec["text"] and rec["text"] == rec["text"].strip(), (name, rec["_id"])
        for key in ("title", "kind", "category"):
            if key in rec:
                assert rec[key] and rec[key] == rec[key].strip(), (name, rec["_id"], key)
    docs, qs = set(doc_ids), set(q_ids)
    pairs = set()
    for q, d, s in qrels:
        assert q in qs and d in docs, (name, q, d)
        assert (q, d) not in pairs, (name, "duplicate judgement", q, d)
        assert isinstance(s, int) and s in (0, 1), (name, q, d, s)
        pairs.add((q, d))
    positives = Counter(q for q, _, s in qrels if s > 0)
    assert all(positives[q] >= 1 for q in qs), f"{name}: a query without a relevant document"


def write_set(
    out: Path,
    name: str,
    *,
    corpus: list[dict],
    queries: list[dict],
    qrels: list[tuple[str, str, int]],
    meta: dict,
    readme: str,
    licence_files: dict[str, str | Path],
) -> dict:
    validate(name, corpus, queries, qrels)
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "qrels").mkdir(parents=True)
    dump_jsonl(folder / "corpus.jsonl", corpus)
    dump_jsonl(folder / "queries.jsonl", queries)
    with open(folder / "qrels" / "test.tsv", "w", encoding="utf-8", newline="\n") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for q, d, s in qrels:
            fh.write(f"{q}\t{d}\t{s}\n")
    full_meta = {
        "name": name,
        "description": meta["description"],
        "language": "zh",
        "instruction": meta["instruction"],
        "instruction_zh": meta["instruction_zh"],
        "license": meta["license"],
        "source": source_string(name),
        "candidates": meta["candidates"],
        "main_score": meta["main_score"],
        "built_by": BUILT_BY,
    }
    assert all(isinstance(v, str) for v in full_meta.values())
    assert "\n" not in full_meta["description"]
    with open(folder / "meta.json", "w", encoding="utf-8", newline="\n") as fh:
        json.dump(full_meta, fh, ensure_ascii=False, indent=2)
        fh.write("\n")
    (folder / "README.md").write_text(readme.strip() + "\n", encoding="utf-8", newline="\n")
    for target, content in licence_files.items():
        if isinstance(content, Path):
            shutil.copyfile(content, folder / target)
        else:
            (folder / target).write_text(content.strip() + "\n", encoding="utf-8", newline="\n")
    sizes = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    data_bytes = sizes["corpus.jsonl"] + sizes["queries.jsonl"] + sizes["qrels/test.tsv"]
    assert sum(sizes.values()) < 3_200_000, f"{name}: {sum(sizes.values())} bytes in all, over budget"
    digest = hashlib.sha256()
    for rel in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        digest.update((folder / rel).read_bytes())
    return {
        "name": name,
        "queries": len(queries),
        "documents": len(corpus),
        "qrels": len(qrels),
        "relevant": sum(1 for *_, s in qrels if s > 0),
        "data_bytes": data_bytes,
        "total_bytes": sum(sizes.values()),
        "files": sizes,
        "sha256": digest.hexdigest()[:16],
    }


def size_line(corpus, queries, qrels) -> str:
    pos = sum(1 for *_, s in qrels if s > 0)
    neg = len(qrels) - pos
    text = f"{len(queries):,} queries, {len(corpus):,} documents, {len(qrels):,} qrels ({pos:,} relevant"
    return text + (f", {neg:,} judged non-relevant)" if neg else ")")


# ---------------------------------------------------------------------------------------
# 1. CMRC 2018: question -> paragraph
# ---------------------------------------------------------------------------------------


def build_cmrc2018(src: Path, out: Path) -> dict:
    folder = src / "cmrc2018"
    raw = json.loads((folder / "cmrc2018_dev.json").read_text(encoding="utf-8"))
    corpus: list[dict] = []
    seen_ctx: dict[str, str] = {}
    questions: list[tuple[str, str, str]] = []  # (question id, text, paragraph id)
    n_articles = n_paragraphs = n_dup_ctx = 0
    for article in raw["data"]:
        n_articles += 1
        title = clean(article.get("title", ""))
        for para in article["paragraphs"]:
            n_paragraphs += 1
            ctx = clean(para["context"])
            if not ctx:
                continue
            pid = clean(para["id"])
            if ctx in seen_ctx:  # identical context: reuse the first paragraph's id
                n_dup_ctx += 1
                pid = seen_ctx[ctx]
            else:
                seen_ctx[ctx] = pid
                doc = {"_id": pid, "title": title, "text": ctx} if title else {"_id": pid, "text": ctx}
                corpus.append(doc)
            for qa in para["qas"]:
                text = clean(qa["question"])
                if text:
                    questions.append((clean(qa["id"]), text, pid))
    n_questions_raw = len(questions)

    # Identical question texts attached to different paragraphs are one ambiguous query:
    # merge them (first id kept) and judge every paragraph they came from relevant.
    by_text: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for qid, text, pid in questions:
        by_text[text].append((qid, pid))
    merged = [(text, items) for text, items in by_text.items() if len(items) > 1]
    queries, qrels = [], []
    for text, items in by_text.items():
        qid = items[0][0]
        queries.append({"_id": qid, "text": text})
        for pid in dict.fromkeys(pid for _, pid in items):
            qrels.append((qid, pid, 1))

    sampled = False
    if jsonl_bytes(corpus) + jsonl_bytes(queries) + qrels_bytes(qrels) > MAX_SET_BYTES:
        sampled = True
        keep = set(q["_id"] for q in random.Random(SEED).sample(queries, 1000))
        queries = [q for q in queries if q["_id"] in keep]
        qrels = [r for r in qrels if r[0] in keep]

    merged_note = "; ".join(f"`{t}` ({', '.join(q for q, _ in items)})" for t, items in merged) or "none"
    readme = f"""
# cmrc2018 (embedlab public set)

**What it tests.** Question -> passage retrieval over Chinese Wikipedia. Each query is a
CMRC 2018 reading-comprehension question; the corpus is every paragraph of the CMRC 2018
dev set; the relevant document is the paragraph the question was written about. This is
a lexical *sanity* set: character n-gram TF-IDF already ranks the right paragraph first
for roughly 90% of queries, so a neural model that does much worse is broken, not subtle.

**Size.** {size_line(corpus, queries, qrels)}. Candidates: the whole corpus (`all`).
Main score: MRR.

## Source and attribution

- CMRC 2018 (Cui et al., *A Span-Extraction Dataset for Chinese Machine Reading
  Comprehension*, EMNLP-IJCNLP 2019), repository {SOURCES['cmrc2018']['repo']},
  commit `{SOURCES['cmrc2018']['commit']}`, file `{SOURCES['cmrc2018']['file']}` (SQuAD style).
- Licence: **CC BY-SA 4.0** (the upstream `LICENCE`, copied here). ShareAlike: this
  derived set is distributed under the same licence; keep the attribution.

## How it was built (`{BUILT_BY}`)

- Raw: {n_articles} articles, {n_paragraphs} paragraphs, {n_questions_raw} questions.
- Corpus: every paragraph context, whitespace-stripped, id = the paragraph id
  (`DEV_<n>`), `title` = the Wikipedia article title (left out where the source title is
  empty). Identical contexts found: {n_dup_ctx}.
- Queries: every question, id = the CMRC question id (`DEV_<n>_QUERY_<m>`); qrels map
  each question to its paragraph with score 1.
- Identical question texts under different paragraphs are merged into one query (first
  id kept) with all their paragraphs relevant: {merged_note}.
- Sampling: {'1,000 questions sampled with seed 0 (size budget)' if sampled else 'none; all questions fit the ~3 MB budget'}.
- Fields: corpus `{{_id, title?, text}}`, queries `{{_id, text}}`; no categories or kinds.

## Caveats

- Query ids contain their paragraph id (`DEV_12_QUERY_3` -> `DEV_12`): harmless for
  embedding models, but do not let a pipeline use ids as features.
- embedlab embeds `title + " " + text`; the title often names the entity the question
  asks about, which makes the set easier still.
- Several paragraphs come from the same article and share a title; questions about one
  article can be partly answerable from its sibling paragraphs, which are judged only
  implicitly (non-relevant). MRR is therefore a slight underestimate.
- Paragraphs are long (several hundred characters); models with a short maximum sequence
  length see truncated documents.
"""
    meta = {
        "description": "CMRC 2018 dev: Chinese Wikipedia reading-comprehension questions retrieving their paragraph (lexical sanity set).",
        "instruction": "Given a Chinese question, retrieve the Wikipedia paragraph that answers the question",
        "instruction_zh": "给定一个问题，检索能回答该问题的维基百科段落",
        "license": "CC-BY-SA-4.0",
        "candidates": "all",
        "main_score": "mrr",
    }
    return write_set(
        out, "cmrc2018", corpus=corpus, queries=queries, qrels=qrels, meta=meta, readme=readme,
        licence_files={"LICENCE": folder / "LICENCE"},
    )


# ---------------------------------------------------------------------------------------
# 2. Idioms: explanation -> chengyu, sharing no character
# ---------------------------------------------------------------------------------------


def _variant_keys(idiom: str) -> list[str]:
    return [idiom[:i] + "*" + idiom[i + 1 :] for i in range(len(idiom))]


def build_idioms(src: Path, out: Path) -> dict:
    folder = src / "idiom_xinhua"
    with open(folder / "database.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    n_rows = len(rows)
    idioms = [clean(r["Idiom"]) for r in rows]
    expls = [clean(r["Explanation"]) for r in rows]
    synonyms = [[clean(s) for s in (r.get("Synonym") or "").split("|") if clean(s)] for r in rows]
    doc_id = {i: f"idiom-{i:05d}" for i in range(n_rows)}  # row index in database.csv (0-based)

    valid_idiom = [bool(FOUR_HAN.match(x)) for x in idioms]
    counts = Counter(idioms[i] for i in range(n_rows) if valid_idiom[i])
    # Rows whose idiom text repeats are left out of everything (ids must map to one text).
    usable = [i for i in range(n_rows) if valid_idiom[i] and counts[idioms[i]] == 1]
    all_idiom_set = set(idioms[i] for i in usable)
    norm_expl = [normalise(e) for e in expls]
    norm_count = Counter(n for n in norm_expl if n)

    funnel: dict[str, int] = {"rows": n_rows}
    stage = [i for i in usable if expls[i]]
    funnel["idiom is 4 Han characters, unique, explanation non-empty"] = len(stage)
    stage = [i for i in stage if 8 <= len(expls[i]) <= 80]
    funnel["explanation 8-80 characters"] = len(stage)
    stage = [i for i in stage if not set(idioms[i]) & set(expls[i])]
    funnel["explanation shares no character with the idiom (brief's filter)"] = len(stage)
    n_no_shared_any_len = sum(1 for i in usable if expls[i] and not set(idioms[i]) & set(expls[i]))
    stage = [i for i in stage if norm_count[norm_expl[i]] == 1]
    funnel["explanation unique in the dictionary (after removing punctuation)"] = len(stage)

    def quoted_idioms(i: int) -> list[str]:
        e = expls[i]
        return [e[k : k + 4] for k in range(len(e) - 3) if e[k : k + 4] in all_idiom_set and e[k : k + 4] != idioms[i]]

    stage = [i for i in stage if not quoted_idioms(i)]
    funnel["explanation contains no other dictionary idiom verbatim"] = len(stage)
    eligible = stage

    # Sample 1,000 answers: shuffle with seed 0, walk in order, skip an idiom that differs
    # in one character from an answer already taken (a variant spelling such as
    # 黄卷幼妇/黄绢幼妇 would make the other one a second correct answer).
    order = list(eligible)
    random.Random(SEED).shuffle(order)
    answers: list[int] = []
    taken_keys: set[str] = set()
    skipped_variants = 0
    for i in order:
        keys = _variant_keys(idioms[i])
        if any(k in taken_keys for k in keys):
            skipped_variants += 1
            continue
        answers.append(i)
        taken_keys.update(keys)
        if len(answers) == 1000:
            break
    assert len(answers) == 1000, f"only {len(answers)} eligible idiom queries"
    answer_set = set(answers)
    answer_idioms = set(idioms[i] for i in answers)

    # Distractor pool: every other usable idiom, minus anything that could be a second
    # correct answer to one of the queries.
    answer_norms = [norm_expl[i] for i in answers]
    answer_syn = set(s for i in answers for s in synonyms[i])
    query_text_all = "\u0000".join(expls[i] for i in answers)
    excluded = Counter()
    pool = []
    for i in usable:
        if i in answer_set:
            continue
        x = idioms[i]
        if any(k in taken_keys for k in _variant_keys(x)):
            excluded["one-character variant of an answer"] += 1
            continue
        if x in answer_syn or answer_idioms & set(synonyms[i]):
            excluded["listed as synonym of / with an answer"] += 1
            continue
        if x in query_text_all:
            excluded["appears verbatim in a query"] += 1
            continue
        n = norm_expl[i]
        if n and any(n in a or a in n for a in answer_norms):
            excluded["explanation equal to / contained in / containing a query's"] += 1
            continue
        pool.append(i)
    distractors = random.Random(SEED).sample(pool, 2000)

    corpus_rows = sorted(answer_set | set(distractors))
    corpus = [{"_id": doc_id[i], "text": idioms[i], "kind": "idiom"} for i in corpus_rows]
    queries = [{"_id": f"q-{i:05d}", "text": expls[i]} for i in sorted(answers)]
    qrels = [(f"q-{i:05d}", doc_id[i], 1) for i in sorted(answers)]

    starts = Counter()
    for i in answers:
        e = expls[i]
        starts[next((p for p in ("比喻", "形容", "犹言", "指", "犹") if e.startswith(p)), "other")] += 1
    funnel_md = "\n".join(f"| {k} | {v:,} |" for k, v in funnel.items())
    excluded_md = "\n".join(f"  - {k}: {v:,}" for k, v in sorted(excluded.items())) or "  - none"
    starts_md = ", ".join(f"{k} {v}" for k, v in starts.most_common())
    qlen = sorted(len(expls[i]) for i in answers)
    readme = f"""
# idioms (embedlab public set)

**What it tests.** Meaning, not surface overlap. Each query is a dictionary explanation
of a Chinese four-character idiom (成语); the documents are idioms; the relevant document
is the idiom the explanation defines. Every query shares **no character** with its
answer, so character-overlap methods (BM25, n-gram TF-IDF) get no help: a model must know
what 吊儿郎当 means to match it to "形容仪容不整，作风散漫，态度不严肃或不认真。".

**Size.** {size_line(corpus, queries, qrels)}. Documents: 1,000 answers + 2,000 other
idioms; all are `kind: "idiom"` (an answer to one query is a distractor for the others).
Candidates: the whole corpus (`all`). Main score: MRR.

## Source and attribution

- `database.csv` (columns Idiom, Pinyin, Letter, Explanation, Synonym) from
  {SOURCES['idioms']['repo']}, commit `{SOURCES['idioms']['commit']}`,
  `{SOURCES['idioms']['file']}`: **MPL-2.0** (`License_MPL2.md`, copied here).
- It is cleaned from pwxcoo/chinese-xinhua `data/idiom.json` (中华新华字典数据库):
  **MIT**, Copyright (c) 2018 PWXCOO (`LICENSE_chinese-xinhua_MIT`, copied here).
- The explanations are those of the Xinhua idiom dictionary as collected by
  chinese-xinhua; keep both notices with any copy.

## How it was built (`{BUILT_BY}`, seed {SEED})

Filter funnel over `database.csv` (explanations and idioms whitespace-stripped; "shares no
character" compares the whole explanation, including any leading gloss of the idiom's
characters, with the idiom's four characters):

| step | rows left |
|---|---:|
{funnel_md}

(Without the length limit, {n_no_shared_any_len:,} rows share no character with their idiom.)
The two last steps go beyond the plain filter so that each query has exactly one correct
answer among dictionary idioms: explanations shared by several idioms (variant spellings
such as 捱三顶四/捱三顶五) are dropped, and so are explanations quoting another idiom
verbatim (犹言如愿以偿 -> 如愿以偿 would be a near-synonym that also matches lexically).

- Queries: the eligible rows shuffled with `random.Random({SEED})`, taken in that order,
  skipping an idiom one character away from an already taken answer
  ({skipped_variants} skipped), until 1,000. Query id `q-<row>`, text = the explanation.
- Distractors: 2,000 idioms sampled with `random.Random({SEED})` from the
  {len(pool):,} other idioms left after excluding possible second answers:
{excluded_md}
- Document id `idiom-<row>` (0-based row of `database.csv`); query `q-<row>` is answered
  by `idiom-<row>`.
- Query explanations: {qlen[0]}-{qlen[-1]} characters, median {qlen[len(qlen) // 2]}; they begin
  with {starts_md}.

## Caveats

- Near-synonymous idioms remain: the dictionary has many idioms of close meaning
  (以卵击石 / 螳臂当车), and a distractor can fit a query almost as well as the answer. The
  exclusions above remove only exact or contained explanations, variants and listed
  synonyms. Scores are a lower bound on "understanding".
- The shares-no-character filter favours figurative idioms (about half of the queries
  begin with 比喻 or 形容); the set is harder and less typical than the dictionary as a
  whole.
- The upstream cleaning left artefacts in the dictionary: unmatched quotation marks
  (`同滥竽充数”`) and a few corrupted characters (`犹言畒中捉鳖`, for 瓮中捉鳖). Those two
  rows are filtered out here, but similar artefacts may remain in kept rows; texts are
  kept as published.
- Ids encode the source row and pair query and answer (`q-00123` -> `idiom-00123`); do not
  let a pipeline use ids as features.
- Documents are four characters long; models that need a passage prefix or title may
  behave differently on such short documents.
"""
    meta = {
        "description": "Xinhua dictionary explanation -> Chinese four-character idiom, with no character shared between query and answer.",
        "instruction": "Given the explanation of a Chinese idiom, retrieve the idiom that matches the explanation",
        "instruction_zh": "给定一个成语的释义，检索与该释义相符的成语",
        "license": "MPL-2.0 AND MIT",
        "candidates": "all",
        "main_score": "mrr",
    }
    stats = write_set(
        out, "idioms", corpus=corpus, queries=queries, qrels=qrels, meta=meta, readme=readme,
        licence_files={
            "License_MPL2.md": folder / "License_MPL2.md",
            "LICENSE_chinese-xinhua_MIT": folder / "LICENSE_chinese-xinhua_MIT",
        },
    )
    stats["funnel"] = funnel
    stats["no_shared_any_length"] = n_no_shared_any_len
    stats["skipped_variants"] = skipped_variants
    stats["distractor_pool"] = len(pool)
    stats["distractor_exclusions"] = dict(excluded)
    return stats


# ---------------------------------------------------------------------------------------
# 3. CSL: title -> abstract
# ---------------------------------------------------------------------------------------

CSL_APACHE_NOTICE = """
CSL: A Large-scale Chinese Scientific Literature Dataset
https://github.com/ydli-ai/CSL (commit 0f1ac06), benchmark/ts/ts_test.tsv
Yudong Li, Yuqing Zhang, Zhe Zhao, Linlin Shen, Weijie Liu, Weiquan Mao, Hui Zhang (COLING 2022)

The upstream readme states (section "License"):

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.

(The upstream repository ships no separate LICENSE file; this notice is copied from its
readme. The data in this folder was derived by embedlab's scripts/build_public_data.py:
titles and abstracts re-encoded as queries, corpus and qrels; texts unchanged except
surrounding whitespace stripped.)
"""


def build_csl(src: Path, out: Path) -> dict:
    folder = src / "csl"
    path = folder / "ts_test.tsv"
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    rows = [line.rstrip("\r").split("\t") for line in lines]
    layout = Counter(len(r) for r in rows)
    tags = Counter(r[0] for r in rows)
    assert layout == Counter({3: len(rows)}), f"csl: unexpected column counts {layout}"
    assert set(tags) == {"to title"}, f"csl: unexpected task tags {tags}"
    corpus, queries, qrels = [], [], []
    seen_abs, seen_title = set(), set()
    skipped = 0
    for k, (_, abstract, title) in enumerate(rows):
        abstract, title = clean(abstract), clean(title)
        if not abstract or not title or abstract in seen_abs or title in seen_title:
            skipped += 1
            continue
        seen_abs.add(abstract)
        seen_title.add(title)
        corpus.append({"_id": f"a{k:04d}", "text": abstract})
        queries.append({"_id": f"t{k:04d}", "text": title})
        qrels.append((f"t{k:04d}", f"a{k:04d}", 1))
    if len(queries) > 1000:
        keep = set(random.Random(SEED).sample(range(len(queries)), 1000))
        corpus = [x for j, x in enumerate(corpus) if j in keep]
        queries = [x for j, x in enumerate(queries) if j in keep]
        qrels = [x for j, x in enumerate(qrels) if j in keep]
    alen = sorted(len(d["text"]) for d in corpus)
    tlen = sorted(len(q["text"]) for q in queries)
    readme = f"""
# csl (embedlab public set)

**What it tests.** Title -> abstract retrieval over Chinese scientific papers (core
journals, 2010-2020, all disciplines). Each query is a paper title; the corpus is the
1,000 abstracts of the CSL title-generation test split; the relevant document is the
paper's own abstract. Like cmrc2018 this is a lexical *sanity* set: character n-gram
TF-IDF ranks the right abstract first about 90-95% of the time.

**Size.** {size_line(corpus, queries, qrels)}. Candidates: the whole corpus (`all`).
Main score: MRR.

## Source and attribution

- CSL: A Large-scale Chinese Scientific Literature Dataset (Li et al., COLING 2022),
  {SOURCES['csl']['repo']}, commit `{SOURCES['csl']['commit']}`, `{SOURCES['csl']['file']}`.
- Licence: **Apache-2.0**, as stated in the upstream readme (there is no separate licence
  file upstream; `LICENSE` here reproduces the readme's notice with attribution).

## How it was built (`{BUILT_BY}`)

- `ts_test.tsv` has {len(rows):,} lines, no header, {dict(layout)} tab-separated columns:
  a task tag (always `to title`), the abstract, the title. Titles and abstracts are all
  distinct and non-empty ({skipped} rows skipped).
- Query `t<row>` = title, document `a<row>` = abstract (0-based line number), qrels
  `t<row>` -> `a<row>` score 1. No sampling: all 1,000 rows are used (seed {SEED} would only
  apply to a larger file). `ts_dev.tsv` (another 1,000, no title overlap) is not used.
- Abstracts: {alen[0]}-{alen[-1]} characters (median {alen[len(alen) // 2]}); titles:
  {tlen[0]}-{tlen[-1]} (median {tlen[len(tlen) // 2]}).

## Caveats

- Titles and abstracts share many technical terms, so the task is mostly lexical.
- The texts are as published by CSL (including their typos, e.g. `双宫能团` in the
  abstract of the paper titled `双官能团...`), ASCII punctuation inside Chinese text and
  occasional formula fragments.
- Ids pair query and answer (`t0123` -> `a0123`); do not let a pipeline use ids as
  features.
- The abstracts are journal metadata (collected by CSL from the National Science and
  Technology Resource sharing service); CSL distributes them under Apache-2.0, but
  rights in the original abstracts rest with their authors/journals.
"""
    meta = {
        "description": "CSL: Chinese scientific paper titles retrieving their own abstract among 1,000 (lexical sanity set).",
        "instruction": "Given the title of a Chinese scientific paper, retrieve the abstract of that paper",
        "instruction_zh": "给定一篇中文科技论文的标题，检索该论文的摘要",
        "license": "Apache-2.0",
        "candidates": "all",
        "main_score": "mrr",
    }
    stats = write_set(
        out, "csl", corpus=corpus, queries=queries, qrels=qrels, meta=meta, readme=readme,
        licence_files={"LICENSE": CSL_APACHE_NOTICE},
    )
    stats["layout"] = {"lines": len(rows), "columns": dict(layout), "tags": dict(tags)}
    return stats


# ---------------------------------------------------------------------------------------
# 4. PAWS-X zh: paraphrase vs adversarial non-paraphrase
# ---------------------------------------------------------------------------------------

PAWSX_NOTICE = """
PAWS-X: A Cross-lingual Adversarial Dataset for Paraphrase Identification
Yinfei Yang, Yuan Zhang, Chris Tar, Jason Baldridge (EMNLP-IJCNLP 2019)
https://github.com/google-research-datasets/paws (Chinese test split, human translated),
as redistributed in https://github.com/zejunwang1/CSTS (commit 2e7eeed), PAWS-X/test_2k.tsv

Terms stated by Google for PAWS / PAWS-X:

The dataset may be freely used for any purpose, although acknowledgement of Google LLC
("Google") as the data source would be appreciated. The dataset is provided "AS IS"
without any warranty, express or implied. Google disclaims all liability for any damages,
direct or indirect, resulting from the use of the dataset.

(The source folder carried no licence file; this notice records the terms above. The
data in this folder was regrouped by embedlab's scripts/build_public_data.py; sentence
texts unchanged except surrounding whitespace stripped.)
"""


def build_pawsx(src: Path, out: Path) -> dict:
    path = src / "pawsx_zh" / "test_2k.tsv"
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].rstrip("\r").split("\t")
    assert header == ["id", "sentence1", "sentence2", "label"], header
    rows = [line.rstrip("\r").split("\t") for line in lines[1:] if line.strip()]
    assert all(len(r) == 4 for r in rows), "pawsx: a row without 4 columns"
    rows = [(clean(i), clean(a), clean(b), int(l)) for i, a, b, l in rows]

    s = {}
    s["pairs"] = len(rows)
    s["label_1"] = sum(1 for r in rows if r[3] == 1)
    s["label_0"] = sum(1 for r in rows if r[3] == 0)
    s1_groups: dict[str, list[int]] = defaultdict(list)
    s2_groups: dict[str, list[int]] = defaultdict(list)
    for _, a, b, l in rows:
        s1_groups[a].append(l)
        s2_groups[b].append(l)
    for col, g in (("sentence1", s1_groups), ("sentence2", s2_groups)):
        s[f"{col}_distinct"] = len(g)
        s[f"{col}_repeated"] = sum(1 for v in g.values() if len(v) > 1)
        s[f"{col}_mixed_label_groups"] = sum(1 for v in g.values() if 0 in v and 1 in v)
        s[f"{col}_mixed_label_groups_excluding_NS"] = sum(
            1 for k, v in g.items() if k != "NS" and 0 in v and 1 in v
        )
    s["rows_with_NS_placeholder"] = sum(1 for r in rows if "NS" in (r[1], r[2]))
    s["identical_pairs"] = sum(1 for r in rows if r[1] == r[2])

    # Sentence graph over normalised texts (whitespace/punctuation/case removed): an edge
    # per judged pair, in either direction. Each sentence with at least one paraphrase and
    # one non-paraphrase partner becomes a query over exactly those partners.
    text_of: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    edges: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    pair_ids: dict[tuple[str, str], list[str]] = defaultdict(list)
    dropped = Counter()
    for pid, a, b, label in rows:
        if "NS" in (a, b):
            dropped["a side is the placeholder 'NS' (untranslated)"] += 1
            continue
        ka, kb = normalise(a), normalise(b)
        if ka == kb:
            dropped[f"both sides identical after normalisation (label {label})"] += 1
            continue
        for k, t in ((ka, a), (kb, b)):
            if k not in text_of:
                text_of[k] = t
                first_seen[k] = len(first_seen)
        edges[ka][kb].add(label)
        edges[kb][ka].add(label)
        pair_ids[tuple(sorted((ka, kb)))].append(pid)
    conflicts = sorted({tuple(sorted((a, b))) for a in edges for b, v in edges[a].items() if len(v) > 1})
    dropped["pair judged both 1 and 0 (after merging)"] = sum(len(pair_ids[c]) for c in conflicts)

    anchors = []
    for k in sorted(edges, key=first_seen.__getitem__):
        pos = sorted((b for b, v in edges[k].items() if v == {1}), key=first_seen.__getitem__)
        neg = sorted((b for b, v in edges[k].items() if v == {0}), key=first_seen.__getitem__)
        if pos and neg:
            anchors.append((k, pos, neg))

    corpus, queries, qrels = [], [], []
    shape = Counter()
    used_pairs = set()
    for n, (k, pos, neg) in enumerate(anchors, start=1):
        qid = f"q{n:03d}"
        queries.append({"_id": qid, "text": text_of[k]})
        shape[(len(pos), len(neg))] += 1
        for tag, kind, grade, partners in (("p", "paraphrase", 1, pos), ("n", "adversarial", 0, neg)):
            for m, b in enumerate(partners, start=1):
                did = f"{qid}-{tag}{m}"
                corpus.append({"_id": did, "text": text_of[b], "kind": kind})
                qrels.append((qid, did, grade))
                used_pairs.add(tuple(sorted((k, b))))
    kinds_of_sentence: dict[str, set[str]] = defaultdict(set)
    for k, pos, neg in anchors:
        for b in pos:
            kinds_of_sentence[b].add("paraphrase")
        for b in neg:
            kinds_of_sentence[b].add("adversarial")
    s["sentences_after_cleaning"] = len(text_of)
    s["judged_pairs_after_cleaning"] = len(pair_ids) - len(conflicts)
    s["groups"] = len(anchors)
    s["group_shapes_pos_neg"] = {f"{p}+/{q}-": c for (p, q), c in sorted(shape.items())}
    s["distinct_source_pairs_used"] = len(used_pairs)
    s["source_rows_used"] = sum(len(pair_ids[p]) for p in used_pairs)
    s["sentences_both_paraphrase_and_adversarial"] = sum(1 for v in kinds_of_sentence.values() if len(v) > 1)
    s["anchors_also_a_partner_elsewhere"] = sum(1 for k, _, _ in anchors if k in kinds_of_sentence)
    s["dropped_rows"] = dict(dropped)
    s["chance_top1"] = round(sum(len(p) / (len(p) + len(q)) for _, p, q in anchors) / len(anchors), 4)

    dropped_md = "\n".join(f"  - {k}: {v}" for k, v in dropped.items())
    shapes_md = ", ".join(f"{v} groups {k}" for k, v in s["group_shapes_pos_neg"].items())
    readme = f"""
# pawsx-zh (embedlab public set)

**What it tests.** Whether a model scores a true paraphrase above an *adversarial*
non-paraphrase: a sentence with the same words but swapped entities or roles
("A 效力于 X、B 效力于 Y" vs "A 效力于 Y、B 效力于 X"). Bag-of-words and character
overlap cannot tell these apart; word order and structure matter. Each query is a
sentence; its candidates are only its judged partners (`candidates: "judged"`): at least
one paraphrase (`kind: "paraphrase"`, score 1) and at least one adversarial
non-paraphrase (`kind: "adversarial"`, score 0). Main score: **top1** (is the
highest-scored candidate a paraphrase?). Chance level: {s['chance_top1']:.3f}.

**Size.** {size_line(corpus, queries, qrels)}. Group shapes (paraphrases+/adversarial-):
{shapes_md}.

## Source and attribution

- PAWS-X (Yang et al., EMNLP-IJCNLP 2019), Chinese human-translated test pairs, from
  Google's https://github.com/google-research-datasets/paws, as redistributed in
  {SOURCES['pawsx-zh']['repo']}, commit `{SOURCES['pawsx-zh']['commit']}`,
  `{SOURCES['pawsx-zh']['file']}`.
- Terms (Google): may be freely used for any purpose; acknowledgement of Google LLC as the
  data source appreciated; provided "AS IS". See `LICENSE` (no licence file was shipped
  with the source folder; the notice records Google's stated terms).

## The source's structure, and why the groups are built this way

`test_2k.tsv` is {s['pairs']:,} independent pairs (`id, sentence1, sentence2, label`;
{s['label_1']} label 1, {s['label_0']} label 0), not grouped by a shared first sentence:

- sentence1: {s['sentence1_distinct']:,} distinct values, {s['sentence1_repeated']} repeated,
  only {s['sentence1_mixed_label_groups_excluding_NS']} with both a label-1 and a label-0
  partner; sentence2 likewise
  ({s['sentence2_distinct']:,} distinct, {s['sentence2_mixed_label_groups_excluding_NS']} mixed).
- The same sentence often appears as sentence1 in one pair and sentence2 in another
  (PAWS builds pairs from a source sentence, its word-scrambled version and their
  back-translations), so grouping on one column misses most of the structure.

So the build treats the file as a graph: sentences are nodes (keyed on a normalised form:
NFKC, lower case, whitespace and punctuation removed; the first surface form in file
order is the text used), each judged pair is an undirected edge with its label, and
**every sentence with at least one label-1 and one label-0 neighbour is a query** whose
judged documents are exactly those neighbours. No label is inferred: every qrel is a
pair a PAWS-X annotator judged.

Rows left out before grouping:
{dropped_md}

Result: {s['groups']} groups from {s['distinct_source_pairs_used']} distinct judged pairs
({s['source_rows_used']} source rows) out of {s['judged_pairs_after_cleaning']} usable pairs;
most pairs in the file have no partner of the opposite label sharing a sentence and cannot
form a ranking query.

Ids: query `q<nnn>` (order of first appearance), documents `q<nnn>-p<m>` (paraphrase)
and `q<nnn>-n<m>` (adversarial). Documents are per group, so the same sentence can appear
under several ids (and be a query itself): a sentence can be the paraphrase of one query
and the adversarial partner of another (sentences for which this happens:
{s['sentences_both_paraphrase_and_adversarial']}), so kinds are per (query, document) pair. Do not evaluate with
`candidates: "all"`. No sampling; no randomness.

## Caveats

- Small: {s['groups']} queries, so top1 has a 95% interval of roughly +/-{100 * 1.96 * (0.25 / s['groups']) ** 0.5:.0f}
  points; compare models on the same queries (paired), not against published numbers.
- Groups overlap: {s['anchors_also_a_partner_elsewhere']} query sentences are also documents of
  other groups, and a pair can be used once from each side; groups are not independent.
- PAWS-X labels carry some noise (the source had identical sentences labelled 0 and a
  few pairs judged both ways after normalisation; those were dropped, others remain).
- Texts are human translations from English Wikipedia sentences and keep many Latin-script
  names (Rimi Tomy, Nashua Silver Knights); some translations are uneven.
- Merging sentences that differ only in spacing or punctuation means a document's text
  can differ in punctuation from the variant an annotator saw.
"""
    meta = {
        "description": "PAWS-X zh: rank a sentence's paraphrase above its adversarial word-swap non-paraphrase (judged candidates only).",
        "instruction": "Given a Chinese sentence, retrieve the sentence that has the same meaning",
        "instruction_zh": "给定一个句子，检索与其意思相同的句子",
        "license": "PAWS-X terms: free for any purpose, acknowledgement of Google LLC appreciated, provided AS IS",
        "candidates": "judged",
        "main_score": "top1",
    }
    stats = write_set(
        out, "pawsx-zh", corpus=corpus, queries=queries, qrels=qrels, meta=meta, readme=readme,
        licence_files={"LICENSE": PAWSX_NOTICE},
    )
    stats["structure"] = s
    return stats


# ---------------------------------------------------------------------------------------

BUILDERS = {"cmrc2018": build_cmrc2018, "idioms": build_idioms, "csl": build_csl, "pawsx-zh": build_pawsx}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=REPO_ROOT.parent / "shared" / "data", help="raw data folder (default: ../shared/data from the repo root)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "data", help="output folder (default: data/ in the repo root)")
    parser.add_argument("--only", nargs="*", choices=sorted(BUILDERS), help="build only these sets")
    parser.add_argument("--stats", type=Path, help="also write the build statistics as JSON here")
    args = parser.parse_args(argv)
    src, out = args.src.resolve(), args.out.resolve()
    if not (src / "SOURCES.md").exists():
        parser.error(f"{src} does not look like the raw data folder (no SOURCES.md)")
    out.mkdir(parents=True, exist_ok=True)
    all_stats = []
    for name in args.only or BUILDERS:
        stats = BUILDERS[name](src, out)
        all_stats.append(stats)
        print(
            f"{name:10s} {stats['queries']:5d} queries {stats['documents']:5d} docs "
            f"{stats['qrels']:5d} qrels  {stats['total_bytes'] / 1e6:.2f} MB  sha256 {stats['sha256']}"
        )
    if args.stats:
        args.stats.write_text(json.dumps(all_stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
