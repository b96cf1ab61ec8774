# %% [markdown]
# # 12 · Real data: CMRC2018, idioms, CSL, PAWS-X zh
#
# The public sets bundled with embedlab, with confidence intervals, and where lexical overlap alone already wins.

# %%
from IPython.display import Markdown, display

from embedlab.report import analysis, findings, plots
from embedlab.report import render as rep

font = plots.use_style()  # the style sheet and the CJK font every figure uses

# %% tags=["parameters"]
models = None  # model names or {name, model, path, backend} mappings; None: the bundled models
samples = None  # {data set: [n_queries, n_docs]} (null = all); None: analysis.REAL_SAMPLES
sample_seed = 0
cache_dir = None  # embedding cache; None: $EMBEDLAB_CACHE_DIR, else .cache/embedlab in the checkout
figures_dir = None  # where figures are saved; None: figures/ in the checkout
needs = {"real_data_report": {}}  # runs primed into the cache before this notebook executes (scripts/make_notebooks.py)

# %%
figures = rep.figure_folder(figures_dir, "12_real_data")
draw = rep.Drawer(figures, cache_dir)  # saves PNG + SVG; an unchanged figure is copied from the cache, not redrawn

sets = analysis.real_datasets(samples, sample_seed)
run = analysis.real_data_report(models, sets, cache_dir)
summary = run.summary()

# %%
display(findings.lead(summary, run.comparisons("mrr"), "mrr"))

# %%
draw("mrr-by-model", plots.metric_bars, summary, "mrr")

# %% [markdown]
# To keep the bundled CPU models within minutes, queries are drawn with a seed and large corpora are cut: every document judged for a kept query stays, plus a seeded random draw of the others. Fewer distractors make retrieval easier than on the whole corpus, so compare models with each other here, not with published scores. The table below says exactly what was kept. Every number on this page comes from the run this notebook makes (read from the embedding cache when an earlier run computed it). Parameters (papermill): `models`, `samples`, `sample_seed`, `cache_dir`, `figures_dir`.

# %%
rep.table(analysis.sampling_table(sets))

# %% [markdown]
# ## Accuracy with confidence intervals

# %%
rep.table(summary, ["model", "dataset", "status", "n_queries", "top1", "top1_low", "top1_high", "mrr", "mrr_low", "mrr_high", "ndcg_at_10", "mean_margin"])

# %%
draw("top1-by-model", plots.metric_bars, summary, "top1")

# %% [markdown]
# ## Where lexical overlap alone already wins
#
# BM25 against the best other model on each set's main score (paired over the same queries); the verdict is read from the interval of the difference.

# %%
verdicts = analysis.lexical_verdicts(run, sets, summary=summary)
display(Markdown(analysis.verdict_note(verdicts)))

# %% [markdown]
# Per query: does the answer share more of the query's words (jieba) than any other candidate does? Accuracy of each model on the queries where it does and where it does not.

# %%
overlap = analysis.overlap_accuracy(run, analysis.lexical_overlap(sets), "top1")
draw("top1-by-overlap", plots.overlap_bars, overlap)

# %%
rep.table(overlap)
