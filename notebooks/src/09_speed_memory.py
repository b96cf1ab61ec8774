# %% [markdown]
# # 09 · Speed and memory against model size
#
# How fast each model encodes and how much memory it holds, against its size, on the machine that ran it. The article's GPU figures are another device: they get a panel of their own.

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
needs = {"trap_report": {}}  # runs primed into the cache before this notebook executes (scripts/make_notebooks.py)

# %%
figures = rep.figure_folder(figures_dir, "09_speed_memory")
draw = rep.Drawer(figures, cache_dir)  # saves PNG + SVG; an unchanged figure is copied from the cache, not redrawn

run = analysis.trap_report(models, datasets, cache_dir)
speed = analysis.speed_table(run)

# %%
display(findings.speed_lead(speed, analysis.MEASURED_LABEL, run.on_gpu()))

# %%
draw("throughput-vs-size", plots.size_figure, speed, "throughput_texts_per_s")

# %% [markdown]
# ## Why a model has several speeds
#
# Each is a different measurement, so one model shows several numbers:
#
# - **texts per second, throughput pass** (`throughput_texts_per_s`, the figure above): a long pass of many texts encoded in batches, the steady rate a bulk indexing job sees;
# - **texts per second, timed batches** (`texts_per_s`): the median over repeated timed encodes of the data set's first texts; it includes each call's overhead, so it is lower for fast models;
# - **latency** (`latency_median_s`): the seconds one of those timed batches took (median), what one request waits;
# - the article's figure is the seconds for 30 texts at once on its GPU, a latency, shown only in its own panel.
#
# Every number on this page comes from the run this notebook makes (read from the embedding cache when an earlier run computed it: the timings are then that run's, with its timestamp in `measured_at`). Ours are measured on this machine (see the table at the end). Parameters (papermill): `models`, `datasets`, `cache_dir`, `figures_dir`.

# %%
rep.table(speed, ["model", "source", "dataset", "params_m", "dtype", "max_length", "load_s", "n_timed", "latency_median_s", "texts_per_s", "throughput_texts_per_s", "throughput_tokens_per_s", "dim", "cached", "measured_at"])

# %%
display(Markdown(analysis.missing_measurements(speed, ["params_m", "load_s", "texts_per_s", "throughput_tokens_per_s"])))

# %% [markdown]
# ## Texts per second in timed batches, beside the article's GPU figures
#
# One panel per device: this machine's timed batches, and the article's reported GPU rate (30 texts at once) in a panel of its own.

# %%
draw("texts-per-s-vs-size", plots.size_figure, speed, "texts_per_s")

# %% [markdown]
# ## Tokens per second
#
# From the throughput pass, for backends that count tokens.

# %%
draw("tokens-per-s-vs-size", plots.size_figure, speed, "throughput_tokens_per_s")

# %% [markdown]
# ## Memory / 显存与内存
#
# On a GPU run: the GPU memory of the worker that held the model, on the device it actually used (`gpu_device`): `weights` (the engine's parameter bytes), `load delta` (after load minus before), `peak` (highest reading while encoding) and `KV cache` (what the engine allocated; an encoder-only model such as BGE-M3 may get none). The article measured `torch.cuda.memory_allocated()` after load minus before, about the weights: compare its hatched bars with `weights` and `load delta`.
#
# On a CPU run there is no GPU memory: the worker's resident memory is shown, labelled *host RSS, CPU run*, and the article's GPU figures are not drawn beside it (host RSS includes the Python process, the tokenizer and the libraries, and is not GPU memory).

# %%
memory = analysis.memory_frame(run)
display(Markdown(analysis.memory_note(memory)))
rep.table(memory)

# %%
draw("memory-by-model", plots.memory_bars, memory)

# %%
draw("memory-vs-size", plots.memory_scatter, memory)

# %% [markdown]
# ## Load time

# %%
draw("load-time-vs-size", plots.size_figure, speed, "load_s")

# %% [markdown]
# ## The machine behind these numbers

# %%
rep.table(analysis.machine_table(run))
