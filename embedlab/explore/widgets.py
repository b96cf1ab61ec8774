"""What the explorers share: ipywidgets, loaded lazily, the filters' catch-all values, and
every label, title, button and note they show, each written once as a (Chinese, English)
pair and picked by `say(key, lang)` (`report.lang`: zh / en / both)."""

from __future__ import annotations

from embedlab.report.lang import SEPARATOR, kind_label, pick

ALL = "all"
NO_COMPARISON = "(none)"

TEXTS: dict[str, tuple[str, str]] = {
    # filters and boxes
    "data set": ("数据集", "data set"),
    "model": ("模型", "model"),
    "compare with": ("对比模型", "compare with"),
    "category": ("类别", "category"),
    "outcome": ("结果", "outcome"),
    "query": ("查询", "query"),
    "trap": ("陷阱", "trap"),
    "answer": ("答案", "answer"),
    "+ document": ("+ 文档", "+ document"),
    "add a candidate document": ("添加一段候选文档", "add a candidate document"),
    "remove this document": ("删除这段文档", "remove this document"),
    "table of the queries": ("查询列表", "table of the queries"),
    ALL: ("全部", ALL),
    NO_COMPARISON: ("(无)", NO_COMPARISON),
    "won": ("答对", "won"),
    "lost": ("答错", "lost"),
    "tied": ("并列", "tied"),
    # table columns
    "dataset": ("数据集", "data set"),
    "query_id": ("查询编号", "query id"),
    "doc_id": ("文档编号", "document id"),
    "winner_kind": ("排第一的类型", "kind ranked first"),
    "rank_b": ("对比模型的名次", "rank (compared)"),
    "margin_b": ("对比模型的差距", "margin (compared)"),
    "winner_kind_b": ("对比模型排第一的类型", "kind ranked first (compared)"),
    "queries": ("条查询", "queries"),
    "all rows": ("全部行", "all rows"),
    "no query": ("没有符合这些筛选条件的查询。", "No query matches these filters."),
    "type a query": ("请输入一个查询和至少一段候选文档。", "Type a query and at least one candidate document."),
    # scores, margins, outcomes
    "margin": ("差距", "margin"),
    "best answer − best other": ("答案最高分 − 其他最高分", "best answer − best other"),
    "first − second": ("第一 − 第二", "first − second"),
    "answer first": ("答案第一", "answer first"),
    "distractor first": ("干扰项第一", "distractor first"),
    "tie": ("并列", "tie"),
    "no answer marked": ("未标答案", "no answer marked"),
    "no other candidate": ("没有其他候选", "no other candidate"),
    "cosine similarity": ("余弦相似度", "cosine similarity"),
    "bars from": ("条形范围", "bars from"),
    "to": ("至", "to"),
    "model runs so far": (
        "到目前为止的模型运行(见过的状态来自缓存)",
        "model runs so far (a state seen before comes from the cache)",
    ),
    "run": ("次运行", "run"),
    "from the cache": ("次来自缓存", "from the cache"),
    "none yet": ("还没有", "none yet"),
    "answer at rank": ("答案排在第", "answer at rank"),
    "ranked documents": ("排序后的文档", "ranked documents"),
    "heatmap row of": ("热力图行", "heatmap row of"),
    "rank": ("名次", "rank"),
    "kind": ("类型", "kind"),
    "score": ("得分", "score"),
    "document": ("文档", "document"),
    "static trap": (
        "探索器初始状态的静态视图(在 JupyterLab 中运行笔记本才能编辑查询和文档)。",
        (
            "Static view of the explorer's initial state "
            "(run the notebook in JupyterLab to edit the query and the documents)."
        ),
    ),
    "static results": (
        "结果浏览器初始状态的静态视图(在 JupyterLab 中运行笔记本才能筛选)。",
        "Static view of the explorer's initial state (run the notebook in JupyterLab to filter).",
    ),
    # two models side by side
    "side by side": ("两个模型并排", "two models side by side"),
    "both answer first": ("两个模型都把答案排第一", "both rank the answer first"),
    "neither answer first": ("两个模型都没有把答案排第一", "neither ranks the answer first"),
    "only answer first": ("只有 {model} 把答案排第一", "only {model} puts the answer first"),
    "disagree note": (
        (
            "高亮:只在一个模型前几名里的文档,或只有一个模型排第一的答案;加粗:答案。"
            "差距 = 答案得分 − 其他文档最高分(各模型自己的单位)。"
        ),
        (
            "Highlighted: documents in one model's top list but not the other's, or the answer when only "
            "one ranks it first; bold: the answer. "
            "Margin = answer score − best other score (each model in its own units)."
        ),
    ),
    "other's rank": ("另一模型的名次", "other's rank"),
    # the map
    "map title": ("语义地图(PCA,二维)", "map (PCA, 2-D)"),
    "map note": (
        (
            "每个模型一幅图:查询(×)和文档(●,按类型着色)投影到 L2 归一化向量的前两个主成分;"
            "绿线连到答案,红虚线连到排在答案前面的干扰项。"
        ),
        (
            "One panel per model: queries (×) and documents (●, coloured by kind) on the first two principal "
            "components of the L2-normalised embeddings; green line to the answer, red dashes to the document "
            "ranked above it."
        ),
    ),
    "no embedding": ("没有向量(按词打分),无法画地图", "has no embedding (it scores words): no map"),
    "explained": ("解释方差", "explained variance"),
    "queries legend": ("查询", "query"),
    "to the answer": ("到答案", "to the answer"),
    "ranked above the answer": ("排在答案前面", "ranked above the answer"),
    # export
    "export": ("导出错题", "export failures"),
    "export tooltip": (
        "把当前筛选出的、该模型答错的查询写成陷阱文件(YAML)",
        "write the selected queries this model gets wrong as a trap file (YAML)",
    ),
    "file": ("文件", "file"),
    "exported": ("已导出", "exported"),
    "failures to": ("条错题到", "failures to"),
}


def say(key: str, lang: str, separator: str = SEPARATOR, **fields: object) -> str:
    """The text `key` of TEXTS in `lang` (zh / en / both, joined by `separator`: " / " for a
    short label, "\n" for a note), its `{field}` slots filled from `fields`."""
    zh, en = TEXTS[key]
    return pick(zh.format(**fields), en.format(**fields), lang, separator)


VALUE_COLUMNS = {"kind", "winner_kind", "winner_kind_b", "outcome"}  # table columns whose values are shown in `lang`


def shown_value(column: str, value: object, lang: str) -> object:
    """A table cell as shown in `lang`: kinds and outcomes translated, other values as they are."""
    if column not in VALUE_COLUMNS or not isinstance(value, str) or not value:
        return value
    return say(value, lang) if column == "outcome" and value in TEXTS else kind_label(value, lang)


def options(labelled, values, lang: str) -> list[tuple[str, str]]:
    """Dropdown options: the `labelled` values (catch-alls, outcomes) shown in `lang`, then
    `values` (names from the run) as they are; each option's value is what the filters compare."""
    return [(say(v, lang), v) for v in labelled] + [(v, v) for v in values]


def _widgets():
    try:
        import ipywidgets
    except ImportError as exc:  # pragma: no cover - the notebooks extra brings it
        raise ImportError("embedlab.explore needs ipywidgets: pip install 'embedlab[notebooks]'") from exc
    return ipywidgets
