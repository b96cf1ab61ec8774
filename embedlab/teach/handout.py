"""Printable handouts, one page per trap category (`embedlab handout`): the category's title
and explanation, a few cases chosen by a rule from a real run (query, answer, the distractor
that fooled a model and by what margin, the query's scores per model as a small table),
discussion questions and a glossary; in Chinese, English or both (`embedlab.report.lang`).

HTML with print CSS (A4, at most two pages), and a PDF printed by Chromium through
Playwright where both are installed. Everything is computed and rendered in memory first and
each file is written whole (`embedlab.files`), so an error leaves nothing half-written."""

from __future__ import annotations

import html
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from embedlab.data.categories import CATEGORIES, get_category, kind_for_query
from embedlab.data.datasets import Dataset
from embedlab.evaluation.results import Report
from embedlab.files import write_bytes, write_text
from embedlab.models import ModelSpec
from embedlab.report.lang import check_lang, kind_label, pick
from embedlab.report.views import shorten, top_ranked

N_CASES = {"zh": 4, "en": 4, "both": 3}  # cases per handout by language: what fits two A4 pages with the score tables
TEXT_CHARS = 90  # a document longer than this is shortened in a case
CELL_CHARS = 18  # a candidate's label in the score table
CHROMIUM_ENV = "EMBEDLAB_CHROMIUM"  # a Chromium executable for the PDFs, before chromium on PATH

Pair = tuple[str, str]  # (Chinese, English), picked with `lang.pick`


SCORE_UNITS: dict[str, Pair] = {
    "cosine similarity": ("余弦相似度", "cosine similarity"),
    "BM25 score": ("BM25 分数", "BM25 score"),
}

GLOSSARY: tuple[tuple[Pair, Pair], ...] = (
    (
        ("top-1（首位命中率）", "top-1"),
        ("答案排在第一位的查询所占的比例。", "The share of queries whose answer is ranked first."),
    ),
    (
        ("MRR（平均倒数排名）", "MRR (mean reciprocal rank)"),
        (
            "答案名次的倒数的平均值：排第 1 得 1，排第 2 得 1/2，排第 3 得 1/3，依此类推。",
            "The mean of 1 / rank of the answer: first counts 1, second 1/2, third 1/3, and so on.",
        ),
    ),
    (
        ("边际（margin）", "margin"),
        (
            (
                "答案的得分减去得分最高的非答案文档的得分；小于零表示干扰文档排在答案前面。"
                "每个模型的分数单位不同（余弦相似度、BM25 分数），边际不能跨模型比较。"
            ),
            (
                "The answer's score minus the best other document's score; below zero a distractor is ranked above "
                "the answer. Each model scores in its own units (cosine similarity, BM25 score), so margins are not "
                "compared across models."
            ),
        ),
    ),
    (
        ("线索 / 捷径（cue / shortcut）", "cue / shortcut"),
        (
            "不理解意思也能猜中答案的表面特征，例如文档长度，或与查询共有的字词。",
            (
                "A surface feature that picks the answer without understanding it, such as the document's length or "
                "the words it shares with the query."
            ),
        ),
    ),
    (
        ("干扰文档", "distractor"),
        (
            "与查询字面相近、却不回答它的文档；它的类型说明它为何相近（另一义项、字面理解等）。",
            (
                "A document close to the query in form that does not answer it; its kind says why it is close (another "
                "sense, a literal reading, ...)."
            ),
        ),
    ),
)

QUESTIONS: tuple[Pair, ...] = (
    (
        "在这几个例子里，干扰文档和答案在字面上有什么相同之处？是哪些字词把模型引向了干扰文档？",
        (
            "In these cases, what does the distractor share with the answer on the surface? Which words drew the model "
            "to it?"
        ),
    ),
    (
        "BM25 只看字词重合。在哪个例子里它和另外两个模型的判断不同？为什么？",
        "BM25 only counts shared words. In which case does it disagree with the embedding models, and why?",
    ),
    (
        "改写其中一个查询，让模型更容易找到答案；再改写一次，让它更难。你改动了什么？",
        (
            "Rewrite one query so that a model finds the answer more easily; then rewrite it to make it harder. What "
            "did you change?"
        ),
    ),
    (
        "边际很小说明什么？如果两个模型的 top-1 相同，你还会看什么来选择？",
        (
            "What does a small margin tell you? If two models have the same top-1, what else would you look at to "
            "choose between them?"
        ),
    ),
)

LABELS: dict[str, Pair] = {
    "handout": ("课堂讲义", "Handout"),
    "cases": ("例子", "Cases"),
    "query": ("查询", "Query"),
    "answer": ("答案", "Answer"),
    "distractor": ("干扰文档", "Distractor"),
    "questions": ("讨论题", "Discussion questions"),
    "glossary": ("术语", "Glossary"),
    "candidate": ("候选文档", "Candidate"),
    "index": ("课堂讲义：语义陷阱", "Handouts: semantic traps"),
}

PARAGRAPHS: dict[str, Pair] = {
    "rule": (
        (
            "例子按固定规则从一次真实运行中选出：先选把干扰文档排在第一位的模型最多的查询，"
            "再选干扰文档领先最多的（按各模型自己的边际尺度：边际除以该模型在该数据集上边际绝对值的中位数），"
            "并尽量覆盖不同类型的干扰文档。"
        ),
        (
            "The cases are chosen by a fixed rule from a real run: the queries for which the most models rank a "
            "distractor first, then those where the distractor leads by the most (in each model's own scale: the "
            "margin divided by that model's median absolute margin on the data set), covering as many distractor kinds "
            "as possible."
        ),
    ),
    "table": (
        (
            "表中每一列是一个模型对该查询各候选文档的打分；颜色越深分数越高（每列单独缩放）；"
            "★ 标出该模型排在第一位的文档。"
        ),
        (
            "Each column holds one model's scores for this query's candidates; the darker, the higher (each column "
            "scaled on its own); ★ marks the document the model ranked first."
        ),
    ),
}


@dataclass(frozen=True)
class Candidate:
    """One document of a case's score table: its kind for this query, text and each model's score."""

    doc_id: str
    kind: str
    text: str
    scores: dict[str, float]
    first_for: frozenset[str] = frozenset()  # models that rank this document first


@dataclass(frozen=True)
class Case:
    """A chosen query: its answer, the distractor shown (the one that beat the answer by the
    most for `model`, or came closest when no model was fooled) and its score table."""

    dataset: str
    query_id: str
    query: str
    answer: str
    distractor: str
    distractor_kind: str
    model: str  # the model whose margin is quoted
    margin: float
    score_name: str
    fooled: tuple[str, ...]  # models that rank a non-answer first (ties count against the model)
    n_models: int
    candidates: tuple[Candidate, ...] = field(default=())


# ---- the choice rule -----------------------------------------------------------------------


def rank_queries(per_query: pd.DataFrame, category: str, exclude: Sequence[str] = ()) -> pd.DataFrame:
    """Every query of `category` (each data set), ranked for a handout: one row per query with
    `missed` (models whose top-1 is not the answer), the `model` with the lowest `scaled`
    margin (margin / that model's median |margin| on the data set, so BM25 and cosine
    compare), its `margin` and the `kind` of its best non-answer. Most missed first, then the
    lowest scaled margin."""
    frame = per_query[~per_query["model"].isin(list(exclude))]
    scale = frame.groupby(["model", "dataset"])["margin"].transform(lambda m: np.median(np.abs(m)) or 1.0)
    frame = frame[frame["category"] == category].assign(scaled=lambda f: f["margin"] / scale[f.index])
    if frame.empty:
        return pd.DataFrame(columns=["dataset", "query_id", "missed", "n_models", "model", "margin", "scaled", "kind"])
    frame = frame.assign(
        kind=[kind_for_query(str(k) if pd.notna(k) else "", relevant=False) for k in frame["best_wrong_kind"]]
    )
    worst = frame.sort_values("scaled", kind="stable").groupby(["dataset", "query_id"], sort=False).head(1)
    counts = frame.groupby(["dataset", "query_id"]).agg(
        missed=("top1", lambda t: int((t < 1).sum())), n_models=("model", "size")
    )
    ranked = worst.merge(counts, on=["dataset", "query_id"])
    ranked = ranked.sort_values(
        ["missed", "scaled", "dataset", "query_id"], ascending=[False, True, True, True], kind="stable"
    )
    columns = ["dataset", "query_id", "missed", "n_models", "model", "margin", "scaled", "kind", "best_wrong_doc_id"]
    return ranked[columns].reset_index(drop=True)


def choose_queries(ranked: pd.DataFrame, n: int) -> pd.DataFrame:
    """`n` rows of `rank_queries`: first, down the ranking, each query that fooled a model
    with a distractor kind not yet covered (every query, when none fooled a model); then the
    best-ranked of the rest; kept in ranking order."""
    fooling = ranked[ranked["missed"] > 0]
    pool = fooling if not fooling.empty else ranked
    chosen: list[int] = []
    covered: set[str] = set()
    for i, kind in zip(pool.index, pool["kind"]):
        if len(chosen) < n and kind not in covered:
            chosen.append(i)
            covered.add(kind)
    chosen += [i for i in ranked.index if i not in chosen][: n - len(chosen)]
    return ranked.loc[sorted(chosen)].reset_index(drop=True)


# ---- cases from a run ----------------------------------------------------------------------


def _score_names(report: Report) -> dict[str, str]:
    return {m["name"]: ModelSpec(**m).score_name for m in report.config.get("models", [])}


def _candidates(report: Report, ds: Dataset, query_id: str, models: Sequence[str], shown: str) -> tuple[Candidate, ...]:
    """The query's judged documents (answer first), the distractor shown and each model's
    first-ranked document, with every model's score."""
    judged = ds.judged_docs(query_id)
    first = {m: ds.doc_ids[top_ranked(report, ds, m, [query_id])[0]] for m in models}
    doc_ids = list(dict.fromkeys([*(d for d, _ in judged), shown, *first.values()]))
    row = ds.query_ids.index(query_id)
    position = {d: i for i, d in enumerate(ds.doc_ids)}
    gains = ds.qrels.get(query_id, {})
    return tuple(
        Candidate(
            doc_id=d,
            kind=kind_for_query(ds.kinds.get(d, ""), relevant=gains.get(d, 0) > 0),
            text=ds.corpus[d],
            scores={m: float(report.scores[(m, ds.name)][row, position[d]]) for m in models},
            first_for=frozenset(m for m, top in first.items() if top == d),
        )
        for d in doc_ids
    )


def category_cases(report: Report, datasets: Sequence[Dataset], category: str, n: int) -> list[Case]:
    """The cases of one category's handout, chosen by `rank_queries` + `choose_queries` from
    the run's real models (cue baselines left out)."""
    get_category(category)
    sets = {d.name: d for d in datasets}
    cues = set(report.cue_models())
    models = [m for m in dict.fromkeys(report.per_query["model"]) if m not in cues]
    chosen = choose_queries(rank_queries(report.per_query, category, exclude=sorted(cues)), n)
    if chosen.empty:
        raise ValueError(f"no query of trap category {category!r} in the run (data sets: {', '.join(sets)})")
    units = _score_names(report)
    cases = []
    for r in chosen.itertuples():
        ds = sets[r.dataset]
        answer = ds.answer_of(r.query_id)
        fooled = report.per_query[
            (report.per_query["dataset"] == r.dataset)
            & (report.per_query["query_id"] == r.query_id)
            & report.per_query["model"].isin(models)
            & (report.per_query["top1"] < 1)
        ]["model"]
        cases.append(
            Case(
                dataset=r.dataset,
                query_id=r.query_id,
                query=ds.queries[r.query_id],
                answer=ds.corpus[answer],
                distractor=ds.corpus[r.best_wrong_doc_id],
                distractor_kind=r.kind,
                model=r.model,
                margin=float(r.margin),
                score_name=units.get(r.model, "cosine similarity"),
                fooled=tuple(fooled),
                n_models=int(r.n_models),
                candidates=_candidates(report, ds, r.query_id, models, r.best_wrong_doc_id),
            )
        )
    return cases


# ---- the page ------------------------------------------------------------------------------

CSS = """
@page { size: A4; margin: 13mm 14mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", sans-serif; font-size: 9.5pt;
       line-height: 1.4; color: #111; margin: 0; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media screen { body { max-width: 190mm; margin: 1em auto; } }
h1 { font-size: 15pt; margin: 0 0 2mm; } h2 { font-size: 11.5pt; margin: 4mm 0 1.5mm; border-bottom: 1px solid #999; }
h3 { font-size: 10pt; margin: 0 0 1mm; } p { margin: 0 0 1.5mm; }
.explain { font-size: 10pt; } .small { font-size: 8pt; color: #444; }
.case { break-inside: avoid; page-break-inside: avoid; border: 1px solid #bbb; padding: 2mm 3mm; margin: 0 0 2.5mm; }
.case dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.5mm 3mm; margin: 0 0 1.5mm; }
.case dt { font-weight: bold; } .case dd { margin: 0; }
table.scores { border-collapse: collapse; font-size: 8pt; width: 100%; table-layout: fixed; }
table.scores th, table.scores td { border: 1px solid #888; padding: 0.6mm 1.5mm; }
table.scores th { background: #eee; font-weight: bold; text-align: center; overflow-wrap: normal; }
table.scores td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.scores col.doc { width: 46%; }
tr.answer td.doc { font-weight: bold; }
ol, ul { margin: 0 0 1mm; padding-left: 6mm; } li { margin-bottom: 0.8mm; }
dl.glossary { display: grid; grid-template-columns: max-content 1fr; gap: 0.8mm 3mm; margin: 0; }
dl.glossary dt { font-weight: bold; } dl.glossary dd { margin: 0; }
.keep { break-inside: avoid; page-break-inside: avoid; }
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _paragraphs(pair: Pair, lang: str, css: str = "") -> str:
    """A paragraph pair as <p> elements: one in zh or en, the Chinese then the English in both."""
    attr = f" class='{css}'" if css else ""
    return "".join(f"<p{attr}>{_e(p)}</p>" for p in pick(*pair, lang, separator="\n\n").split("\n\n"))


def _label(key: str, lang: str) -> str:
    return pick(*LABELS[key], lang)


def _shade(value: float, low: float, high: float) -> str:
    """A cell's style: one hue, lightness falling with the score (reads in grey scale too)."""
    t = 0.5 if high <= low else (value - low) / (high - low)
    lightness = 96 - 58 * t
    ink = "#fff" if lightness < 62 else "#111"
    return f"background: hsl(215, 40%, {lightness:.0f}%); color: {ink};"


def score_table(case: Case, lang: str) -> str:
    """The query's heatmap row: candidates x models, each column shaded on its own scale."""
    models = list(case.candidates[0].scores) if case.candidates else []
    ranges = {m: (min(c.scores[m] for c in case.candidates), max(c.scores[m] for c in case.candidates)) for m in models}
    head = "".join(f"<th>{_e(m).replace('-', '-<wbr>')}</th>" for m in models)
    rows = []
    for c in case.candidates:
        cells = "".join(
            f"<td class='num' style='{_shade(c.scores[m], *ranges[m])}'>{'★ ' if m in c.first_for else ''}"
            f"{c.scores[m]:.3f}</td>"
            for m in models
        )
        label = f"[{_e(kind_label(c.kind, lang))}] {_e(shorten(c.text, CELL_CHARS))}"
        css = " class='answer'" if c.kind == "answer" else ""
        rows.append(f"<tr{css}><td class='doc'>{label}</td>{cells}</tr>")
    cols = "<colgroup><col class='doc'>" + "<col>" * len(models) + "</colgroup>"
    return (
        f"<table class='scores'>{cols}<thead><tr><th>{_e(_label('candidate', lang))}</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def verdict(case: Case, lang: str) -> str:
    """One sentence: how many models were fooled, and the quoted model's margin in its units."""
    unit = pick(*SCORE_UNITS.get(case.score_name, (case.score_name, case.score_name)), lang)
    k, n, m, margin = len(case.fooled), case.n_models, case.model, case.margin
    if k:
        pair = (
            (
                f"{n} 个模型中有 {k} 个把别的文档排在答案前面（{'、'.join(case.fooled)}）；"
                f"{m} 被这篇干扰文档骗得最厉害，边际 {margin:+.3f}（{unit}）。"
            ),
            (
                f"{k} of {n} models rank another document above the answer ({', '.join(case.fooled)}); this distractor "
                f"fooled {m} the most, margin {margin:+.3f} ({unit})."
            ),
        )
    else:
        pair = (
            f"{n} 个模型都把答案排在第一位；最接近被骗的是 {m}：答案只领先这篇干扰文档 {margin:.3f}（{unit}）。",
            (
                f"All {n} models rank the answer first; {m} came closest to being fooled: the answer leads this "
                f"distractor by only {margin:.3f} ({unit})."
            ),
        )
    return pick(*pair, lang, separator=" ")


def case_html(number: int, case: Case, lang: str) -> str:
    distractor = f"{_label('distractor', lang)} ({kind_label(case.distractor_kind, lang)})"
    return (
        f"<section class='case'><h3>{number}. {_e(case.query)} <span class='small'>"
        f"{_e(case.dataset)} {_e(case.query_id)}</span></h3><dl>"
        f"<dt>{_e(_label('answer', lang))}</dt><dd>{_e(shorten(case.answer, TEXT_CHARS))}</dd>"
        f"<dt>{_e(distractor)}</dt><dd>{_e(shorten(case.distractor, TEXT_CHARS))}</dd></dl>"
        f"<p>{_e(verdict(case, lang))}</p>{score_table(case, lang)}</section>"
    )


def glossary_html(lang: str) -> str:
    items = "".join(
        f"<dt>{_e(pick(*term, lang))}</dt><dd>{_e(pick(*text, lang, separator=' '))}</dd>" for term, text in GLOSSARY
    )
    return f"<div class='keep'><h2>{_e(_label('glossary', lang))}</h2><dl class='glossary'>{items}</dl></div>"


def questions_html(lang: str) -> str:
    items = "".join(f"<li>{_e(pick(*q, lang, separator=' '))}</li>" for q in QUESTIONS)
    return f"<div class='keep'><h2>{_e(_label('questions', lang))}</h2><ol>{items}</ol></div>"


def _document(title: str, body: str, lang: str) -> str:
    code = {"zh": "zh-Hans", "en": "en", "both": "zh-Hans"}[lang]
    return (
        f"<!DOCTYPE html><html lang='{code}'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>"
    )


def _title(category: str, lang: str) -> str:
    cat = get_category(category)
    return pick(cat.title_zh, cat.title_en, lang)


def handout_html(category: str, cases: Sequence[Case], lang: str, models: Sequence[str]) -> str:
    """The whole page of one category's handout, in `lang`."""
    check_lang(lang)
    cat = get_category(category)
    title = _title(category, lang)
    run_line = pick(f"模型：{'、'.join(models)}。", f"Models: {', '.join(models)}.", lang, separator=" ")
    body = (
        f"<h1>{_e(_label('handout', lang))} · {_e(title)}</h1>"
        f"{_paragraphs((cat.description_zh, cat.description_en), lang, 'explain')}"
        f"<h2>{_e(_label('cases', lang))}</h2>{_paragraphs(PARAGRAPHS['rule'], lang, 'small')}"
        f"<p class='small'>{_e(run_line)}</p>{_paragraphs(PARAGRAPHS['table'], lang, 'small')}"
        + "".join(case_html(i, c, lang) for i, c in enumerate(cases, 1))
        + questions_html(lang)
        + glossary_html(lang)
    )
    return _document(f"{_label('handout', lang)} · {title}", body, lang)


def page_name(category: str, lang: str, suffix: str = "html") -> str:
    return f"{category}-{lang}.{suffix}"


def index_html(categories: Sequence[str], lang: str, with_pdf: bool) -> str:
    """A page linking each category's handout (and its PDF where one was printed)."""
    items = []
    for c in categories:
        pdf = f" (<a href='{_e(page_name(c, lang, 'pdf'))}'>PDF</a>)" if with_pdf else ""
        items.append(f"<li><a href='{_e(page_name(c, lang))}'>{_e(_title(c, lang))}</a>{pdf}</li>")
    body = f"<h1>{_e(_label('index', lang))}</h1><ul>{''.join(items)}</ul>"
    return _document(_label("index", lang), body, lang)


def handout_pages(
    report: Report, datasets: Sequence[Dataset], categories: Sequence[str], lang: str, n: int | None = None
) -> dict[str, str]:
    """File name -> HTML of each category's handout, computed from `report`, with `n` cases
    each (default: `N_CASES` of the language)."""
    n = n or N_CASES[check_lang(lang)]
    cues = set(report.cue_models())
    models = [m for m in dict.fromkeys(report.per_query["model"]) if m not in cues]
    return {
        page_name(c, lang): handout_html(c, category_cases(report, datasets, c, n), lang, models) for c in categories
    }


# ---- printing and writing ------------------------------------------------------------------


def find_chromium() -> tuple[str | None, str]:
    """(Chromium executable, "") when Playwright and a Chromium are installed, else (None,
    why not): `$EMBEDLAB_CHROMIUM`, then chromium on PATH, then Playwright's own download."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None, "Playwright is not installed (pip install playwright)"
    for candidate in (os.environ.get(CHROMIUM_ENV), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate, ""
    try:
        with sync_playwright() as p:
            own = p.chromium.executable_path
    except Exception as exc:  # noqa: BLE001 - any failure to locate it is the reason given
        return None, f"Playwright could not locate a Chromium ({exc})"
    if own and Path(own).is_file():
        return own, ""
    return None, f"no Chromium found (${CHROMIUM_ENV}, chromium on PATH, or `playwright install chromium`)"


def print_pdfs(pages: dict[str, str], chromium: str) -> dict[str, bytes]:
    """Each HTML page printed to an A4 PDF by one headless Chromium: file name -> PDF bytes."""
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            for name, text in pages.items():
                page.set_content(text, wait_until="load")
                out[str(Path(name).with_suffix(".pdf"))] = page.pdf(
                    format="A4", print_background=True, prefer_css_page_size=True
                )
        finally:
            browser.close()
    return out


def write_handouts(pages: dict[str, str], out: Path, lang: str, index: bool, chromium: str | None) -> list[Path]:
    """Print the pages (when `chromium` is given), add the index page when asked, then write
    every file whole into `out`; the paths written."""
    pdfs = print_pdfs(pages, chromium) if chromium else {}
    files: dict[str, str | bytes] = dict(pages)
    if index:
        categories = [c.id for c in CATEGORIES if page_name(c.id, lang) in pages]
        files[f"index-{lang}.html"] = index_html(categories, lang, with_pdf=bool(pdfs))
    files.update(pdfs)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in files.items():
        path = out / name
        if isinstance(content, bytes):
            write_bytes(path, content)
        else:
            write_text(path, content)
        written.append(path)
    return written


def make_handouts(
    categories: Sequence[str],
    lang: str,
    out: Path,
    models=None,
    datasets=None,
    cache_dir=None,
    n: int | None = None,
    pdf: bool = True,
    index: bool = False,
) -> tuple[list[Path], str]:
    """`embedlab handout`: the run (classroom models on the trap sets, through the embedding
    cache, as the notebooks make it), the pages, their PDFs where Chromium is found (`pdf`),
    written whole. Returns the paths written and a note on the PDFs ("" when printed)."""
    from embedlab.explore import classroom_models
    from embedlab.report.runs import resolve_datasets, trap_report

    check_lang(lang)
    for c in categories:
        get_category(c)
    chromium, why = find_chromium() if pdf else (None, "--no-pdf")
    sets = resolve_datasets(datasets)
    report = trap_report(classroom_models(models), sets, cache_dir)
    pages = handout_pages(report, sets, categories, lang, n)
    note = "" if chromium else f"no PDF written ({why}); HTML only"
    return write_handouts(pages, out, lang, index, chromium), note
