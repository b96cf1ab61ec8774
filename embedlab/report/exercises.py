"""The notebooks' exercises and their answer keys, computed from the run that renders them:
where an exercise starts (`exercise_start`), whether the trap explorer's state meets a goal
(`goal_check`), and the teacher's answers (`kind_answer`, `lexical_trap_answer`,
`loss_explanation`). Every text is a (Chinese, English) pair picked by `lang.pick`; no
number in them is written by hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from embedlab.data.categories import DOCUMENT_KINDS, DOCUMENT_KINDS_ZH
from embedlab.data.datasets import Dataset
from embedlab.data.words import words
from embedlab.evaluation.results import Report
from embedlab.report.lang import pick
from embedlab.report.views import _datasets, category_cases, query_outcomes, query_table, ranked_documents

PARAGRAPH = "\n\n"  # between the Chinese and the English of a paragraph in "both"
ANSWER_FIRST, DISTRACTOR_FIRST = "answer first", "distractor first"  # the trap explorer's outcomes

# exercise 1 of 15_explore, worked: a homonym (苹果, the company / the fruit) whose
# distractors repeat the query's words while the answer says the same in other words
FOOL_BM25_KEY: dict[str, object] = {
    "query": "苹果手机的电池能用多久",
    "documents": [
        ("iPhone 充满电后,日常使用的续航大约是一天半", True),
        "苹果能放多久?放在冰箱里的苹果能保存一个月",
        "苹果树要种多久才能结果",
    ],
}


@dataclass(frozen=True)
class GoalCheck:
    """Whether the trap explorer's state meets an exercise's goal (`met`), and the reading
    shown in the notebook (`text`, Markdown)."""

    met: bool
    text: str

    def _repr_markdown_(self) -> str:
        return self.text


def shared_words(query: str, text: str) -> list[str]:
    """The words (jieba, as BM25 splits them) of `text` that the query also has, in order."""
    asked = set(words(query))
    return list(dict.fromkeys(w for w in words(text) if w in asked))


def _quoted(items: Sequence[str]) -> str:
    return "、".join(f"“{w}”" for w in items) if items else "—"


def _kind_text(kind: str, lang: str) -> str:
    return pick(DOCUMENT_KINDS_ZH.get(kind, kind), DOCUMENT_KINDS.get(kind, kind), lang)


def exercise_start(report: Report, fooled: str, holds: str) -> tuple[str, str]:
    """Where "fool `fooled` but not `holds`" starts: (data set, query id) of a trap that does
    not meet the goal. In the run's largest data set, the trap both models get right on
    which `fooled` is surest (largest margin); where there is none, the one `fooled` gets
    right and `holds` wrong, again surest first."""
    frame = query_outcomes(report, holds, fooled)
    largest = frame["dataset"].value_counts(sort=True).index[0]
    frame = frame[frame["dataset"] == largest]
    right, right_b = frame["top1"] > 0, frame["top1_b"] > 0
    pool = frame[right & right_b]
    if pool.empty:
        pool = frame[right_b & ~right]
    if pool.empty:
        raise ValueError(f"{largest}: {fooled} gets no query right, so every trap already fools it; no starting point")
    row = pool.sort_values("margin_b", ascending=False, kind="stable").iloc[0]
    return str(row["dataset"]), str(row["query_id"])


def goal_check(summary: pd.DataFrame, fooled: str, holds: str, lang: str = "both") -> GoalCheck:
    """Read the trap explorer's `summary()` against the goal "`fooled` ranks a distractor
    first, `holds` ranks the answer first": met or not, and per model what it should read
    and what it reads."""
    got = dict(zip(summary["model"], summary["outcome"]))
    want = {fooled: DISTRACTOR_FIRST, holds: ANSWER_FIRST}
    met = all(got.get(m) == w for m, w in want.items())
    lines = [
        f"- {m}: "
        + pick(
            f"应为 “{w}”,现在是 “{got.get(m, '没有分数')}”",
            f"should read “{w}”, reads “{got.get(m, 'no score')}”",
            lang,
        )
        + (" ✓" if got.get(m) == w else " ✗")
        for m, w in want.items()
    ]
    head = (
        pick(
            f"✅ **目标达成**:{fooled} 被骗,{holds} 没有。",
            f"✅ **Goal met**: {fooled} is fooled, {holds} is not.",
            lang,
        )
        if met
        else pick("❌ **还没有达成目标。**", "❌ **Goal not met yet.**", lang)
    )
    return GoalCheck(met, head + "\n\n" + "\n".join(lines))


def _mean_shared(cases: pd.DataFrame, kind: str) -> float:
    """Mean number of query words (jieba) shared by the documents of one kind in `cases`."""
    rows = cases[cases["kind"] == kind]
    return sum(len(shared_words(q, d)) for q, d in zip(rows["query"], rows["document"])) / max(len(rows), 1)


def _why(cases: pd.DataFrame, kind: str, lang: str) -> str:
    """Why a kind fools: the words its distractors and the answers share with their query, on average."""
    if cases.empty or kind not in set(cases["kind"]):
        return ""
    by_kind, by_answer = _mean_shared(cases, kind), _mean_shared(cases, "answer")
    return " " + pick(
        f"为什么:这类干扰项平均与查询共有 {by_kind:.1f} 个词,答案 {by_answer:.1f} 个。",
        f"Why: these distractors share {by_kind:.1f} words with their query on average, the answers {by_answer:.1f}.",
        lang,
    )


def kind_answer(
    beats: pd.DataFrame, datasets: Sequence[Dataset] = (), category: str | None = None, lang: str = "both"
) -> str:
    """Markdown answering "which distractor kind fools the models most here, and why", from
    `views.kind_beat_rates`: per data set the kind that scores at least as high as the answer
    in the most (query, distractor) pairs over all models together (then by share), what that
    kind does, each model's own worst kind and, given the `datasets` and the `category`, the
    words that kind's distractors and the answers share with their query on average."""
    if beats.empty:
        return pick("这次评测里这一类没有干扰项。", "No distractor of this category in this run.", lang)
    parts = []
    for dataset, group in beats.groupby("dataset", sort=False):
        pooled = group.groupby("kind", sort=False)[["n_pairs", "n_beat"]].sum()
        pooled["rate"] = pooled["n_beat"] / pooled["n_pairs"]
        pooled = pooled.sort_values(["n_beat", "rate"], ascending=False, kind="stable")
        kind, top = pooled.index[0], pooled.iloc[0]
        if top["n_beat"] == 0:
            parts.append(
                pick(
                    f"- **{dataset}**:没有一个干扰项的得分达到答案(共 {int(pooled['n_pairs'].sum())} 对)。",
                    f"- **{dataset}**: no distractor scored as high as the answer ({int(pooled['n_pairs'].sum())} "
                    "pairs).",
                    lang,
                    PARAGRAPH,
                )
            )
            continue
        worst = group.sort_values(["n_beat", "beat_rate"], ascending=False, kind="stable").drop_duplicates("model")
        per_model = ", ".join(f"{r.model} `{r.kind}` {r.n_beat}/{r.n_pairs}" for r in worst.itertuples())
        count = f"{int(top['n_beat'])}/{int(top['n_pairs'])}"
        cases = category_cases([d for d in datasets if d.name == dataset], category) if category else pd.DataFrame()
        parts.append(
            pick(
                f"- **{dataset}**:最能骗过模型的是 `{kind}`({_kind_text(kind, 'zh')}):所有模型合计,"
                f"{count} 对里干扰项的得分不低于答案。各模型最常输给的类型:{per_model}。{_why(cases, kind, 'zh')}",
                f"- **{dataset}**: `{kind}` ({_kind_text(kind, 'en')}) fools the models most: over all models, "
                f"in {count} pairs the distractor scored at least as high as the answer. Each model's worst kind: "
                f"{per_model}.{_why(cases, kind, 'en')}",
                lang,
                PARAGRAPH,
            )
        )
    look = pick(
        "再看这种干扰项和查询共有什么(词语、话题、名字),答案又是怎样换一种说法的:上面的热力图和差距图可以逐条核对。",
        "Then look at what this kind shares with the query (words, topic, a name) and how the answer says the same in "
        "other words: the heatmaps and margins above show it query by query.",
        lang,
        PARAGRAPH,
    )
    return "\n".join(parts) + "\n\n" + look


def _answer_text(ds: Dataset, query_id: str) -> str:
    answer = ds.answer_of(query_id)
    return ds.corpus[answer] if answer is not None else ""


def _first_wrong(report: Report, ds: Dataset, model: str, query_id: str) -> pd.Series:
    """The document `model` ranks first for the query (ties against the model)."""
    return ranked_documents(report, ds, model, query_id, k=1).iloc[0]


def _words_note(query: str, distractor: str, answer: str, lang: str) -> str:
    by_distractor, by_answer = shared_words(query, distractor), shared_words(query, answer)
    return pick(
        f"干扰项与查询共有的词:{_quoted(by_distractor)}({len(by_distractor)} 个);"
        f"答案与查询共有的词:{_quoted(by_answer)}({len(by_answer)} 个)。",
        f"Words the distractor shares with the query: {_quoted(by_distractor)} ({len(by_distractor)}); "
        f"the answer: {_quoted(by_answer)} ({len(by_answer)}).",
        lang,
        " / ",
    )


def lexical_trap_answer(
    report: Report,
    category: str,
    datasets: Sequence[Dataset] | Mapping[str, Dataset] | None = None,
    lexical: str = "bm25",
    lang: str = "both",
) -> str:
    """Markdown answering "write a trap of this category that fools BM25" with one the run
    already has: per data set, the query of `category` that `lexical` loses by most, the
    document it ranked first, the words each shares with the query, and the models that
    still found the answer."""
    sets = _datasets(report, {d.name: d for d in datasets} if isinstance(datasets, Sequence) else datasets)
    parts = []
    outcomes = query_outcomes(report, lexical)
    for dataset in dict.fromkeys(report.per_query["dataset"]):
        lost = outcomes[
            (outcomes["dataset"] == dataset) & (outcomes["category"] == category) & (outcomes["outcome"] != "won")
        ]
        if lost.empty:
            parts.append(
                pick(
                    f"- **{dataset}**:{lexical} 在这一类的每条查询都答对了,这里没有现成的例子。",
                    f"- **{dataset}**: {lexical} gets every query of this category right; no example here.",
                    lang,
                    PARAGRAPH,
                )
            )
            continue
        row = lost.sort_values("margin", kind="stable").iloc[0]
        ds, query_id = sets[dataset], row["query_id"]
        query, answer = ds.queries[query_id], _answer_text(ds, query_id)
        top = _first_wrong(report, ds, lexical, query_id)
        pq = report.per_query
        found = pq[(pq["dataset"] == dataset) & (pq["query_id"] == query_id) & (pq["top1"] > 0)]["model"].tolist()
        parts.append(
            pick(
                f"- **{dataset} · {query_id}**(在这一类里 {lexical} 输得最多的一条,差距 {row['margin']:+.3f}):"
                f"查询 “{query}”;答案 “{answer}”;{lexical} 排第一的是 [{top['kind']}] “{top['document']}”。"
                f"{_words_note(query, top['document'], answer, 'zh')} "
                f"仍然找到答案的模型:{', '.join(found) or '没有'}。",
                f"- **{dataset} · {query_id}** (the query of this category {lexical} loses by most, margin "
                f"{row['margin']:+.3f}): query “{query}”; answer “{answer}”; {lexical} ranked first [{top['kind']}] "
                f"“{top['document']}”. {_words_note(query, top['document'], answer, 'en')} Models that still found the "
                f"answer: {', '.join(found) or 'none'}.",
                lang,
                PARAGRAPH,
            )
        )
    return "\n".join(parts)


def loss_explanation(
    report: Report,
    model: str,
    other: str,
    dataset: str,
    category: str,
    query_id: str,
    datasets: Mapping[str, Dataset] | None = None,
    lang: str = "both",
) -> str:
    """Markdown explaining where `model` loses to `other` in one category: which distractor
    kinds `model` put above the answer over the category's lost queries, and for `query_id`
    the distractor it ranked first and the words that distractor and the answer share with
    the query."""
    sets = _datasets(report, datasets)
    lost = query_table(report, model, other, dataset, category, "lost", sets)
    kinds = lost["winner_kind"].replace("", "unjudged").value_counts()
    counts = ", ".join(f"`{k}` {n}" for k, n in kinds.items())
    ds = sets[dataset]
    query, answer, top = ds.queries[query_id], _answer_text(ds, query_id), _first_wrong(report, ds, model, query_id)
    most = kinds.index[0] if not kinds.empty else top["kind"]
    return "\n\n".join(
        [
            pick(
                f"在 {dataset} 的 `{category}` 类里,{model} 答错而 {other} 答对的查询有 {len(lost)} 条;{model} "
                f"排在答案前面的干扰项类型:{counts}。最常见的是 `{most}`:{_kind_text(most, 'zh')}。",
                f"In `{category}` of {dataset}, {model} gets {len(lost)} queries wrong that {other} gets right; the "
                f"kinds it put above the answer: {counts}. Most often `{most}`: {_kind_text(most, 'en')}.",
                lang,
                PARAGRAPH,
            ),
            pick(
                f"以 {query_id} 为例:查询 “{query}”;{model} 排第一的是 [{top['kind']}] “{top['document']}”;"
                f"答案是 “{answer}”。{_words_note(query, top['document'], answer, 'zh')}",
                f"Take {query_id}: query “{query}”; {model} ranked first [{top['kind']}] “{top['document']}”; the "
                f"answer is “{answer}”. {_words_note(query, top['document'], answer, 'en')}",
                lang,
                PARAGRAPH,
            ),
        ]
    )
