# %% [markdown]
# # 13 · Data quality: can form alone find the answer? / 数据质量：只看形式能否找到答案？
#
# How many form shortcuts each trap set leaves open, computed below; then each cue in detail.

# %%
from IPython.display import Markdown, display

from embedlab.report import analysis, findings, plots
from embedlab.report import render as rep

font = plots.use_style()  # the style sheet and the CJK font every figure uses
from embedlab.report import lint

# %% tags=["parameters"]
datasets = None  # trap data sets (names or paths); None: seed + traps-zh
cross_query = False  # True: also ask multilingual-e5-small which answers fit another query (about a minute on 2 cores)
figures_dir = None  # where figures are saved; None: figures/ in the checkout
cache_dir = None  # figure cache; None: $EMBEDLAB_CACHE_DIR, else .cache/embedlab in the checkout
needs = {}  # runs primed into the cache before this notebook executes (scripts/make_notebooks.py)

# %%
figures = rep.figure_folder(figures_dir, "13_data_quality")
draw = rep.Drawer(figures, cache_dir)  # saves PNG + SVG; an unchanged figure is copied from the cache, not redrawn

# %%
sets = analysis.resolve_datasets(datasets)
reports = lint.lint_sets(sets, model=cross_query)
display(findings.flag_lead(lint.stack(reports, "cues")))

# %%
draw("lengths", lint.plot_lengths, lint.stack(reports, "documents"))

# %% [markdown]
# A trap set measures meaning only if its answers and distractors differ in meaning alone. `embedlab lint` (`embedlab.report.lint`) measures the shortcuts a model could take instead: length (answers longer than distractors), word overlap with the query (what BM25 uses; a trap can also leak the other way, when answers avoid the query's words), a genre prior that needs no query at all (`query-blind`: a classifier of answers against distractors from their characters alone, each query's own group held out), and style (semicolons, question forms, advice openings 可以/应, clause count), per category and overall, each query ranked among its own answer and distractors. Thresholds and the rules behind each flag: `docs/writing-traps.md`. No model is run unless `cross_query` is set.
#
# 如果答案总比干扰项长、或与查询共享更多词语、或文风不同，模型不读懂也能得分。本笔记本逐类检查这些形式线索。

# %% [markdown]
# ## The cues
#
# One row per data set and cue; `flagged` follows `rule`. A flagged cue means form alone separates answers from distractors.

# %%
rep.table(lint.stack(reports, "cues"), ["dataset", "name", "flagged", "auc", "answer_longest_rate", "answer_length_mean", "distractor_length_mean", "top1", "chance", "p_value", "direction", "answer_rate", "distractor_rate", "gap", "rule"])

# %% [markdown]
# ## Shortcut rules per category
#
# `overlap` picks the candidate sharing the fewest character bigrams with the query (`direction` inverse) or the most (forward), whichever way the set leans; `query-blind` never reads the query. Top-1 counts an exact tie as shared (the expected top-1 of a random tie-break), so a rule that sees nothing scores chance; p: one-sided binomial against chance. A row is flagged more than 0.10 above chance over the set or 0.25 in a category, with p < 0.01.

# %%
rep.table(lint.stack(reports, "shortcuts"), ["dataset", "cue", "direction", "category", "n", "top1", "chance", "p_value", "flagged"])

# %% [markdown]
# The character n-grams the query-blind classifier leans on most (`carry`: how much each separates answers from distractors over the set; `answers` / `distractors`: how many of each contain it). A genre word in one column only is what a writer rewrites.

# %%
rep.table(lint.stack(reports, "ngrams"), ["dataset", "ngram", "weight", "carry", "answers", "distractors"])

# %% [markdown]
# ## Length: answers against distractors
#
# The figure at the top: every document drawn as a dot over its box plot (characters). On a set without a length cue the two boxes of a data set overlap.

# %% [markdown]
# ## Word overlap with the query
#
# Per query: the share of its words (jieba) found in its answer against the mean share found in its distractors. Above the diagonal, word overlap alone points to the answer; a trap's distractors should sit on or above it.

# %%
draw("overlap", lint.plot_overlap, lint.stack(reports, "queries"))

# %% [markdown]
# ## Per category
#
# The same measures per trap category (`(all)`: the whole set). With fewer than about 25 queries a category's numbers are rough.

# %%
rep.table(lint.stack(reports, "groups"), ["dataset", "category", "n_queries", "n_distractors", "kinds", "length_auc", "answer_longest_rate", "length_judged_top1", "bm25_judged_top1", "overlap_top1", "query_blind_top1", "chance_top1", "overlap_answer", "overlap_distractor", "semicolon_gap", "question_gap", "advice_gap", "clauses_auc"])

# %% [markdown]
# ## Warnings
#
# Unknown category or kind names close to a known one (typos), small categories, near-duplicate documents and, with `cross_query`, answers that fit another query.

# %%
display(Markdown(lint.warnings_markdown(reports)))
