# %% [markdown]
# # 00 · Overview: which model reads the semantic traps
#
# The models on the trap sets beside cue baselines that look only at a document's form. The lines below are computed from this page's numbers.

# %%
from IPython.display import Markdown, display

from embedlab.report import analysis, findings, plots
from embedlab.report import render as rep

font = plots.use_style()  # the style sheet and the CJK font every figure uses

# %% tags=["parameters"]
models = None  # model names or {name, model, path, backend} mappings; None: the bundled models
datasets = None  # trap data sets (names or paths); None: seed + traps-zh
cache_dir = None  # embedding cache; None: $EMBEDLAB_CACHE_DIR, else .cache/embedlab in the checkout
figures_dir = None  # where figures are saved; None: figures/ in the checkout
needs = {"trap_report": {"cues": True}}  # runs primed into the cache before this notebook executes (scripts/make_notebooks.py)

# %%
figures = rep.figure_folder(figures_dir, "00_overview")
draw = rep.Drawer(figures, cache_dir)  # saves PNG + SVG; an unchanged figure is copied from the cache, not redrawn
run = analysis.trap_report(models, datasets, cache_dir, cues=True)  # the chosen models + the cue baselines
summary = run.summary()
cue_names = analysis.cue_models(run)

# %%
display(findings.lead(summary, run.comparisons("top1"), "top1", cues=cue_names))

# %%
draw("choose-a-model", plots.choice_figure, analysis.choice_frame(run, summary=summary))

# %%
draw("top1-by-model", plots.metric_bars, summary, "top1", cues=cue_names)

# %% [markdown]
# Every number on this page comes from the run this notebook makes (read from the embedding cache when an earlier run computed it: the timings are then that run's, with its timestamp in `measured_at`). Parameters (papermill): `models`, `datasets`, `cache_dir`, `figures_dir`.

# %% [markdown]
# ## Summary
#
# One row per model and data set. `_low`/`_high` are 95% intervals over queries: Wilson score intervals for top-k hits, the same Wilson-type interval on the mean for MRR and nDCG@10 (bounded in [0, 1]: conservative, never zero-width). Ties count against the model; `n_near_ties` counts queries decided within the numeric resolution of the row's scores.

# %%
rep.table(summary, ["model", "dataset", "status", "n_queries", "top1", "top1_low", "top1_high", "top3", "mrr", "mrr_low", "mrr_high", "ndcg_at_10", "mean_margin", "error"])

# %% [markdown]
# ## Accuracy per model, with confidence intervals
#
# MRR (mean reciprocal rank of the answer); top-1 is the figure at the top of the page. The cue baselines are dashed reference lines, not bars.

# %%
draw("mrr-by-model", plots.metric_bars, summary, "mrr", cues=cue_names)

# %% [markdown]
# ## Cue baselines: does form alone do as well? / 形式线索基线
#
# A trap set can leak its answers through form: if answers are longer than distractors, a "model" that simply prefers the longer document scores well without reading. The cue baselines measure that: `length` ranks every document of the corpus by its length, `length-judged` ranks each query's own answer and distractors by length (where form cues act). Two more rules rank the same candidates without reading for sense (the shortcuts `embedlab lint` flags): `overlap-inverse` prefers the document that shares the fewest character bigrams with the query (a trap whose answers avoid the query's words), `query-blind` never sees the query: a naive Bayes over the documents' character n-grams, trained on the other queries' answers against their distractors, picks the most answer-like document (a genre prior). A model that does not clearly beat the best cue has not shown that it understands the text.
#
# 如果答案总比干扰项长,只看长度的"模型"也能得分。`length` 在整个语料中按长度排序,`length-judged` 只在每个查询自己的答案和干扰项中按长度排序。`overlap-inverse` 选与查询共享字二元组最少的文档,`query-blind` 完全不看查询,只凭文档的字 n-gram 判断哪篇"像答案"(用其他查询的答案与干扰项训练的朴素贝叶斯)。没有明显超过最佳线索基线的模型,并未证明它读懂了文本。

# %%
cues = analysis.cue_table(run, summary)
rep.table(cues, ["dataset", "model", "kind", "n_queries", "top1", "top1_low", "top1_high", "mrr", "mean_margin"])

# %%
draw("top1-beside-cues", plots.cue_bars, cues, "top1")

# %% [markdown]
# Each model against the best cue baseline of each data set (top-1, paired over the same queries). *Flagged* means it barely beats the cue; the rule is stated with the result below.

# %%
flags = analysis.cue_flags(run)
display(Markdown(analysis.cue_note(flags, analysis.cue_models(run))))

# %% [markdown]
# ## Per trap category
#
# Top-1 per category (rows: data set · category in Chinese and English); each cell shows the value and the number of queries behind it.

# %%
categories = analysis.category_table(run)
draw("top1-by-category", plots.category_heat, categories, "top1")

# %% [markdown]
# ## Paired comparisons
#
# Each pair of models on the same queries: difference in top-1, its paired bootstrap interval, the permutation p-value (`p_holm`: Holm-adjusted within a data set), and wins / ties / losses.

# %%
rep.table(run.comparisons("top1"), ["dataset", "model_a", "model_b", "n", "mean_a", "mean_b", "diff", "diff_low", "diff_high", "p_value", "p_holm", "wins", "ties", "losses"])

# %% [markdown]
# ## Memory / 显存与内存
#
# GPU memory when the models ran on a GPU (weights, what loading added, the peak while encoding, the KV cache the engine allocated), read from the worker that held the model; on a CPU run there is no GPU memory to show, and the resident memory of that worker is shown instead, labelled *host RSS, CPU run*. The article's GPU figures are set beside GPU measurements only.

# %%
memory = analysis.memory_frame(run)
display(Markdown(analysis.memory_note(memory)))

# %%
draw("memory-by-model", plots.memory_bars, memory)

# %% [markdown]
# ## The article's reported numbers beside ours
#
# Rows whose `source` is *reported in the article* are copied from the reference article's results table (a GPU run of BGE-M3 and Qwen3-Embedding with vLLM, on the 8 seed queries); they are **not measured here**. Rows *measured here* come from this notebook's run on the seed. Memory stays in separate columns: the article's GPU figure in `reported_gpu_memory_gib`, ours in `weights_gib` / `gpu_mem_load_gib` / `gpu_mem_peak_gib` (empty on a CPU run) and `host_rss_peak_gib`.

# %%
side = analysis.reported_beside_measured(summary, "seed")
rep.table(side, ["model", "source", "n_queries", "top1", "top1_low", "top1_high", "top3", "texts_per_s", "weights_gib", "gpu_mem_load_gib", "gpu_mem_peak_gib", "host_rss_peak_gib", "reported_gpu_memory_gib", "dim"])

# %%
draw("top1-measured-vs-reported", plots.reported_bars, side, "top1")

# %% [markdown]
# ## Run records
#
# Where and when the measurements were made, with the engine settings actually used (`cached` rows were read from the embedding cache).

# %%
rep.table(run.runs, ["model", "dataset", "status", "cached", "measured_at", "backend", "max_length", "dtype", "gpu_device", "load_s", "texts_per_s", "weights_gib", "gpu_mem_peak_gib", "host_rss_peak_gib", "dim", "error"])

# %%
rep.table(analysis.machine_table(run))
