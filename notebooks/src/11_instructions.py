# %% [markdown]
# # 11 · Instructions: none, the article's prompt, English, Chinese
#
# Does the way a query is presented (no instruction, the article's prompt, the documented English or a Chinese instruction) change what a model finds?

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
needs = {"instruction_report": {}}  # runs primed into the cache before this notebook executes (scripts/make_notebooks.py)

# %%
figures = rep.figure_folder(figures_dir, "11_instructions")
draw = rep.Drawer(figures, cache_dir)  # saves PNG + SVG; an unchanged figure is copied from the cache, not redrawn
run = analysis.instruction_report(models, datasets, cache_dir)
variants = analysis.variant_summary(run)
changes = analysis.variant_comparisons(run, "top1")

# %%
display(findings.largest_effect(changes, "Instructions", label="variant"))

# %%
draw("top1-by-variant", plots.metric_bars, variants, "top1", hue="variant", x="label")

# %% [markdown]
# ## The four variants
#
# Four ways to present a query:
#
# 1. **no instruction**: the query text alone;
# 2. **article prompt**: wrapped in the reference article's Chinese prompt (`指令: …\n查询: …`, which it applied to every model, outside any model's documented template);
# 3. **English instruction**: the documented format, the model record's template with the data set's English task instruction (Qwen3-Embedding: `Instruct: {task}\nQuery:{query}`, on queries only). Qwen3-Embedding's model card advises writing the instruction in English even for multilingual use, so this is the reference the others are tested against;
# 4. **Chinese instruction**: the same template with the data set's Chinese instruction (`instruction_zh`), where the data set has one.
#
# 四种查询写法:无指令;文章的中文提示;文档规定的格式配英文任务指令(Qwen3-Embedding 的模型卡建议即使在多语言场景也用英文写指令,故以此为基准);同一格式配中文指令。
#
# For a model whose record has no instruction slot, "no instruction" and "English instruction" are the same run and there is no Chinese variant. BM25 is left out: for a lexical model a prompt is only more words.
#
# Every number on this page comes from the run this notebook makes (read from the embedding cache when an earlier run computed it). Parameters (papermill): `models`, `datasets`, `cache_dir`, `figures_dir`.

# %% [markdown]
# ## Which chosen models take an instruction
#
# Read from each model record's query template.

# %%
support = analysis.instruction_support(models)
display(Markdown(analysis.support_note(support, "takes_instruction", "a task instruction", "default_instruction")))
rep.table(support)

# %% [markdown]
# ## The task instructions of each data set
#
# English (what models get by default) and Chinese (the fourth variant; empty where the data set has none).

# %%
rep.table(analysis.instruction_table(datasets))

# %% [markdown]
# ## What each model receives
#
# The first query of each data set under each variant, exactly as the record's template formats it.

# %%
rep.table(analysis.variant_prompts(models, datasets))

# %%
rep.table(variants, ["base_model", "variant", "dataset", "n_queries", "top1", "top1_low", "top1_high", "mrr", "mean_margin"])

# %% [markdown]
# ## Side by side

# %%
draw("mrr-by-variant", plots.metric_bars, variants, "mrr", hue="variant", x="label")

# %% [markdown]
# ## Paired tests against the documented format
#
# For each model and data set, each variant against the English instruction on the same queries (top-1): `diff` is the variant minus the documented format, with its paired bootstrap interval, permutation p-value and wins / ties / losses (a win: the variant found the answer first where the documented format did not).

# %%
rep.table(changes, ["dataset", "base_model", "variant", "n", "mean_a", "mean_b", "diff", "diff_low", "diff_high", "p_value", "wins", "ties", "losses"])
