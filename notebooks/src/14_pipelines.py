# %% [markdown]
# # 14 · 检索流水线 — Pipelines beyond one dense vector
#
# Which retrieval pipeline finds the answer on the traps, computed below; then the details.

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
needs = {"pipeline_report": {"reranker": "qwen3-reranker-0.6b"}}  # runs primed into the cache before this notebook executes

# %%
figures = rep.figure_folder(figures_dir, "14_pipelines")
draw = rep.Drawer(figures, cache_dir)  # saves PNG + SVG; an unchanged figure is copied from the cache, not redrawn
run = analysis.pipeline_report(models, datasets, cache_dir, reranker="qwen3-reranker-0.6b")
summary = analysis.pipeline_summary(run)

# %%
display(findings.lead(summary, run.comparisons("top1"), "top1"))

# %%
draw("top1-by-pipeline", plots.metric_bars, summary, "top1")

# %% [markdown]
# A RAG system rarely ships one dense vector alone: it fuses BM25 with a dense model (reciprocal rank fusion), uses BGE-M3's sparse and multi-vector outputs or their hybrid, and puts a reranker on top. On semantic traps these choices matter: a lexical signal may help where the answer shares words with the query and hurt where a distractor does (homonyms). This notebook runs dense, lexical, sparse, hybrid, fused and reranked rows side by side, per trap category, with paired tests of each pipeline against the row it is built on.
#
# 实际的 RAG 系统很少只用一个稠密向量:常把 BM25 与稠密模型做倒数排名融合(RRF)、使用 BGE-M3 的稀疏与多向量输出或其混合,再加一个重排序模型。本笔记本按陷阱类别比较这些流水线,并对每条流水线与其基础行做配对检验。
#
#
# Every number on this page comes from the run this notebook makes (models read from the embedding cache when an earlier run computed them; fusion and reranking are computed here from their score matrices, with no extra encoding). Parameters (papermill): `models`, `datasets`, `cache_dir`, `figures_dir`.
#
# ## What runs, and what is skipped / 运行了什么,跳过了什么
#
# Always (bundled, CPU): the dense models, BM25, the RRF fusion (k = 60, ranx's definition) of BM25 with each dense model and of USE with e5-small. BGE-M3's dense / sparse / ColBERT / hybrid rows and the reranker (`qwen3-reranker-0.6b`, scored as the log-odds logit(yes) − logit(no) over the top 20 of its first stage) run only where their weights are on this machine (a local folder given in `models`, or the Hugging Face cache).

# %%
plan = analysis.pipeline_plan(models, reranker="qwen3-reranker-0.6b")
display(Markdown(analysis.skipped_note(plan)))

# %% [markdown]
# ## Every row, with its kind / 每一行及其类型
#
# `kind` says what the row is: a dense model, BM25, a BGE-M3 mode (sparse, multi-vector, hybrid), a fusion or a reranked first stage; `stage` says how a fused or reranked row was built. Intervals: Wilson for top-k, Wilson-type on the bounded mean for MRR; ties count against the model (also inside a fusion: tied documents share the worst rank of their group).

# %%
rep.table(summary, ["dataset", "model", "kind", "status", "n_queries", "top1", "top1_low", "top1_high", "top3", "mrr", "ndcg_at_10", "stage", "error"])

# %% [markdown]
# ## Top-1 per trap category / 各陷阱类别的 top-1
#
# Rows: data set · category (Chinese and English); columns: every row of the run (models, then fusions, then reranked rows).

# %%
categories = analysis.category_table(run)
draw("top1-by-category", plots.category_heat, categories, "top1")

# %% [markdown]
# ## Does the pipeline help? Paired tests per category / 流水线是否有帮助?按类别的配对检验
#
# Each fused row against each of its members, each reranked row against its first stage, each BGE-M3 mode against BGE-M3 dense, on the same queries: the difference in top-1, its paired bootstrap interval, the permutation p-value and `p_holm` (Holm-adjusted over every test of the data set), wins / ties / losses. `all` is every query of the data set. The table leaves out tests on fewer than 5 queries (the seed has one query per category): too few to read a difference from.

# %%
tests = analysis.category_tests(run, "top1")
display(Markdown(analysis.tests_note(tests)))

# %%
rep.table(analysis.with_enough_queries(tests), ["dataset", "category", "model_a", "model_b", "n", "mean_a", "mean_b", "diff", "diff_low", "diff_high", "p_value", "p_holm", "wins", "ties", "losses"])

# %% [markdown]
# ## What the reranker costs / 重排序的代价
#
# The latency the reranker stage adds, beside its first stage: `rerank_s` for the whole data set (batched), `rerank_latency_s` for one query's top k reranked on its own (median of the timed repeats), `load_s` to load the reranker. Fusion adds no encoding: its rows have no encoding time. Empty when the reranker was skipped (see above).

# %%
rep.table(analysis.rerank_cost(run), ["dataset", "model", "status", "top_k", "n_reranked", "rerank_s", "rerank_latency_s", "load_s", "error"], empty="No reranker ran in this run (see what is skipped above), so there is no cost to show.")

# %% [markdown]
# ## Run records
#
# Where and how each row was made (`cached` rows were read from the embedding cache; fused and reranked rows are computed in this run).

# %%
rep.table(run.runs, ["model", "dataset", "status", "backend", "stage", "cached", "measured_at", "load_s", "host_rss_peak_gib", "error"])
