# One template, eight notebooks: scripts/make_notebooks.py writes 01_homonym ... 08_register
# from this file, filling {number}, {title_zh}, {title_en}, {category} and {notebook} from
# embedlab.data.categories.CATEGORIES (an NN_name.py of the same stem would take precedence).
# %% [markdown]
# # {number} · {title_zh} — {title_en}
#
# One trap category, `{category}`: which model finds the answer here, then what the trap is, its cases, how each model scores every query against its documents, and how plain word overlap (BM25) does on the same cases.

# %%
from IPython.display import Markdown, display

from embedlab.report import analysis, exercises, findings, plots
from embedlab.report import render as rep

font = plots.use_style()  # the style sheet and the CJK font every figure uses

# %% tags=["parameters"]
models = None  # model names or {name, model, path, backend} mappings; None: the bundled models
datasets = None  # trap data sets (names or paths); None: seed + traps-zh
cache_dir = None  # embedding cache; None: $EMBEDLAB_CACHE_DIR, else .cache/embedlab in the checkout
figures_dir = None  # where figures are saved; None: figures/ in the checkout
category = "{category}"
needs = {"trap_report": {}}  # runs primed into the cache before this notebook executes (scripts/make_notebooks.py)

# %%
figures = rep.figure_folder(figures_dir, "{notebook}")
draw = rep.Drawer(figures, cache_dir)  # saves PNG + SVG; an unchanged figure is copied from the cache, not redrawn
sets = analysis.resolve_datasets(datasets)
run = analysis.trap_report(models, sets, cache_dir)
this = analysis.category_table(run, category)

# %%
display(findings.lead(this, analysis.category_comparisons(run, category), "top1", subject="{title_en}: "))

# %%
draw("top1-by-model", plots.metric_bars, this, "top1")

# %% [markdown]
# Every number on this page comes from the run this notebook makes (read from the embedding cache when an earlier run computed it). Parameters (papermill): `models`, `datasets`, `cache_dir`, `figures_dir`.
#
# ## What the trap is
#
# From the category's declaration in `embedlab.data.categories` (Chinese, with an English gloss).

# %%
display(Markdown(analysis.category_card(category)))

# %% [markdown]
# ## Its cases
#
# Each query with the documents judged for it: the answer first, then the distractors and their kinds.

# %%
cases = analysis.category_cases(sets, category)
rep.table(cases, ["dataset", "query_id", "query", "kind", "document"])

# %% [markdown]
# ## 练习 / Exercises
#
# 1. 先别往下看:在这一类里,哪种干扰项最能骗过模型?为什么? / Before you look: which distractor kind fools the models most in this category? Why?
# 2. 写一个这一类的新陷阱,让 BM25 把干扰项排第一;用 `15_explore` 的陷阱探索器检验。 / Write one new trap of this category that fools BM25 (it ranks a distractor first); check it in the trap explorer of `15_explore`.

# %% [markdown]
# ## Query × document similarity, per model
#
# One small panel per query: its own candidates (rows, `[kind for this query] text`, coloured by kind) against every model (columns), each cell the score. A black box marks the answer; a white dot the document the model ranked first. The dense models' cosine similarities share one colour scale; BM25's score has no fixed range, so its column is scaled on its own within each query (grey). At most 12 queries per data set: those the most models get wrong.

# %%
frames = analysis.similarity_frame(run, sets, category=category, max_queries=12)
draw("heatmap", plots.similarity_figures, frames)

# %% [markdown]
# ## Margin per query and model
#
# Best relevant score minus best non-relevant score: below zero a distractor won. Each model has its own scale.

# %%
draw("margins", plots.margin_figure, analysis.margins(run, category, sets))

# %% [markdown]
# ## Which distractor kinds fool which model
#
# For each kind: the share of (query, distractor) pairs in which the distractor scored at least as high as the answer.

# %%
beats = analysis.kind_beat_rates(run, category, sets)
draw("distractor-kinds", plots.kind_beat_heat, beats)

# %%
rep.table(beats)

# %% [markdown] tags=["answer"]
# ### 答案 / Answer key · 练习 1 / Exercise 1
#
# 从这次评测算出(上表):/ Computed from this run (the table above):

# %% tags=["answer"]
display(Markdown(exercises.kind_answer(beats, sets, category)))

# %% [markdown]
# ## BM25 on the same cases
#
# Rank of the answer per query and model (with the kind of document that won when the answer was not first), then each model against BM25 on these queries (paired).

# %%
draw("ranks", plots.outcome_grid, analysis.outcomes(run, category, sets))

# %%
rep.table(analysis.lexical_contrast(run, category), ["dataset", "model_a", "model_b", "n", "mean_a", "mean_b", "diff", "diff_low", "diff_high", "p_value", "wins", "ties", "losses"])

# %% [markdown] tags=["answer"]
# ### 答案 / Answer key · 练习 2 / Exercise 2
#
# 评测里已经骗过 BM25 的这一类陷阱,可以当作范例:干扰项和答案各与查询共有哪些词(从这次评测算出)。/ A trap of this category in the run that already fools BM25, as a model answer: the words the distractor and the answer each share with the query (computed from this run).

# %% tags=["answer"]
display(Markdown(exercises.lexical_trap_answer(run, category, sets)))

# %% [markdown]
# ## Top-1 on this category, with confidence intervals

# %%
rep.table(this, ["model", "dataset", "n_queries", "top1", "top1_low", "top1_high", "top3", "mrr", "mean_margin"])
