# %% [markdown]
# # 10 · Accuracy against truncated dimension (MRL)
#
# Models trained with Matryoshka representation learning (MRL) keep working when their embedding is cut to its first *d* components and renormalised. For each chosen model that supports it, the run is repeated at each dimension through the model's own backend; models without MRL appear once, at their full dimension.

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
dims = None  # dimensions to try; None: powers of two from the record's mrl_min_dim up to its dim
needs = {"dimension_report": {}}  # runs primed into the cache before this notebook executes (scripts/make_notebooks.py)

# %%
figures = rep.figure_folder(figures_dir, "10_dimensions")
draw = rep.Drawer(figures, cache_dir)  # saves PNG + SVG; an unchanged figure is copied from the cache, not redrawn
sweep = analysis.dimension_report(models, datasets, dims, cache_dir)

# %%
display(findings.dimension_lead(sweep))

# %%
draw("top1-vs-dimensions", plots.dimension_curve, sweep, "top1")

# %% [markdown]
# Every number on this page comes from the run this notebook makes (read from the embedding cache when an earlier run computed it). Parameters (papermill): `models`, `datasets`, `dims`, `cache_dir`, `figures_dir`.

# %% [markdown]
# ## Which chosen models support MRL
#
# From the model records (`mrl_min_dim`).

# %%
support = analysis.mrl_support(models)
display(Markdown(analysis.support_note(support, "supports_mrl", "MRL truncation", "mrl_min_dim")))
rep.table(support)

# %%
rep.table(sweep)

# %% [markdown]
# ## Accuracy against dimension

# %%
draw("mrr-vs-dimensions", plots.dimension_curve, sweep, "mrr")
