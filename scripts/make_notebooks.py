"""Write notebooks/*.ipynb from this one reviewable script (nbformat), without outputs.

    python scripts/make_notebooks.py           # (re)write the notebooks
    python scripts/make_notebooks.py --check   # exit 1 if a notebook differs from this script

The notebooks stay thin: each cell calls embedlab (analysis computes, plots draws, report
saves); category titles come from embedlab.data.categories. Parameters (papermill: the cell
tagged `parameters`) default to the bundled models and data sets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embedlab.data.categories import CATEGORIES  # noqa: E402

SETUP = """\
from IPython.display import Markdown, display

from embedlab.report import analysis
from embedlab.report import plots
from embedlab.report import render as rep

plots.use_style()"""

PARAMETERS = """\
models = None  # model names or {name, model, path, backend} mappings; None: the bundled models
datasets = None  # trap data sets (names or paths); None: seed + traps-zh
cache_dir = None  # embedding cache; None: $EMBEDLAB_CACHE_DIR, else .cache/embedlab in the checkout
figures_dir = None  # where figures are saved; None: figures/ in the checkout"""

RUN_NOTE = (
    "Every number below comes from the run this notebook makes (read from the embedding cache when "
    "an earlier run computed it: the timings are then that run's, with its timestamp in `measured_at`). "
    "Parameters (papermill): `models`, `datasets`, `cache_dir`, `figures_dir`."
)


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, parameters: bool = False):
    cell = new_code_cell(text.strip("\n"))
    if parameters:
        cell.metadata["tags"] = ["parameters"]
    return cell


def notebook(cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def head(title: str, intro: str, stem: str, extra_parameters: str = "", parameters: str = PARAMETERS) -> list:
    return [
        md(f"# {title}\n\n{intro.strip()}\n\n{RUN_NOTE}"),
        code(SETUP),
        code(parameters + ("\n" + extra_parameters.strip("\n") if extra_parameters else ""), parameters=True),
        code(f'figures = rep.figure_folder(figures_dir, "{stem}")\ndraw = rep.Drawer(figures, cache_dir)  # saves PNG + SVG; an unchanged figure is copied from the cache, not redrawn'),
    ]


def overview() -> nbformat.NotebookNode:
    stem = "00_overview"
    return notebook(
        head(
            "00 · Overview: every model on the semantic traps",
            "The whole comparison on the chosen models and trap sets: accuracy with 95% confidence "
            "intervals, the models beside cue baselines that look only at a document's form, top-1 per trap "
            "category, paired tests, memory, and the reference article's reported numbers beside ours.",
            stem,
        )
        + [
            code("run = analysis.trap_report(models, datasets, cache_dir, cues=True)  # the chosen models + the cue baselines\nsummary = run.summary()"),
            md(
                "## Summary\n\nOne row per model and data set. `_low`/`_high` are 95% intervals over queries: "
                "Wilson score intervals for top-k hits, a seeded bootstrap for MRR and nDCG@10. Ties count against the model."
            ),
            code('rep.table(summary, ["model", "dataset", "status", "n_queries", "top1", "top1_low", "top1_high", "top3", "mrr", "mrr_low", "mrr_high", "ndcg_at_10", "mean_margin", "error"])'),
            md("## Accuracy per model, with confidence intervals"),
            code('draw("top1-by-model", plots.metric_bars, summary, "top1")'),
            code('draw("mrr-by-model", plots.metric_bars, summary, "mrr")'),
            md(
                "## Cue baselines: does form alone do as well? / 形式线索基线\n\n"
                "A trap set can leak its answers through form: if answers are longer than distractors, a "
                "\"model\" that simply prefers the longer document scores well without reading. The cue baselines "
                "measure that: `length` ranks every document of the corpus by its length, `length-judged` ranks "
                "each query's own answer and distractors by length (where form cues act). A model that does not "
                "clearly beat the best cue has not shown that it understands the text.\n\n"
                "如果答案总比干扰项长,只看长度的\"模型\"也能得分。`length` 在整个语料中按长度排序,`length-judged` "
                "只在每个查询自己的答案和干扰项中按长度排序。没有明显超过最佳线索基线的模型,并未证明它读懂了文本。"
            ),
            code('cues = analysis.cue_table(run, summary)\nrep.table(cues, ["dataset", "model", "kind", "n_queries", "top1", "top1_low", "top1_high", "mrr", "mean_margin"])'),
            code('draw("top1-beside-cues", plots.cue_bars, cues, "top1")'),
            md(
                "Each model against the best cue baseline of each data set (top-1, paired over the same queries). "
                "*Flagged* means it barely beats the cue: less than 0.05 above it, or a paired p-value of 0.05 or more."
            ),
            code("flags = analysis.cue_flags(run)\ndisplay(Markdown(analysis.cue_note(flags, analysis.cue_models(run))))"),
            md("## Per trap category\n\nTop-1 per category (rows: data set · category in Chinese and English); each cell shows the value and the number of queries behind it."),
            code('categories = analysis.category_table(run)\ndraw("top1-by-category", plots.category_heat, categories, "top1")'),
            md(
                "## Paired comparisons\n\nEach pair of models on the same queries: difference in top-1, its paired bootstrap "
                "interval, the permutation p-value (`p_holm`: Holm-adjusted within a data set), and wins / ties / losses."
            ),
            code('rep.table(run.comparisons("top1"), ["dataset", "model_a", "model_b", "n", "mean_a", "mean_b", "diff", "diff_low", "diff_high", "p_value", "p_holm", "wins", "ties", "losses"])'),
            md(
                "## Memory / 显存与内存\n\n"
                "GPU memory when the models ran on a GPU (weights, what loading added, the peak while encoding, "
                "the KV cache the engine allocated), read from the worker that held the model; on a CPU run there is "
                "no GPU memory to show, and the resident memory of that worker is shown instead, labelled "
                "*host RSS, CPU run*. The article's GPU figures are set beside GPU measurements only."
            ),
            code("memory = analysis.memory_frame(run)\ndisplay(Markdown(analysis.memory_note(memory)))"),
            code('draw("memory-by-model", plots.memory_bars, memory)'),
            md(
                "## The article's reported numbers beside ours\n\n"
                "Rows whose `source` is *reported in the article* are copied from the reference article's "
                "results table (a GPU run of BGE-M3 and Qwen3-Embedding with vLLM, on the 8 seed queries); "
                "they are **not measured here**. Rows *measured here* come from this notebook's run on the seed. "
                "Memory stays in separate columns: the article's GPU figure in `reported_gpu_memory_gib`, ours in "
                "`weights_gib` / `gpu_mem_load_gib` / `gpu_mem_peak_gib` (empty on a CPU run) and `host_rss_peak_gib`."
            ),
            code('side = analysis.reported_beside_measured(summary, "seed")\nrep.table(side, ["model", "source", "n_queries", "top1", "top1_low", "top1_high", "top3", "texts_per_s", "weights_gib", "gpu_mem_load_gib", "gpu_mem_peak_gib", "host_rss_peak_gib", "reported_gpu_memory_gib", "dim"])'),
            code('draw("top1-measured-vs-reported", plots.reported_bars, side, "top1")'),
            md("## Run records\n\nWhere and when the measurements were made, with the engine settings actually used (`cached` rows were read from the embedding cache)."),
            code('rep.table(run.runs, ["model", "dataset", "status", "cached", "measured_at", "backend", "max_length", "dtype", "gpu_device", "load_s", "texts_per_s", "weights_gib", "gpu_mem_peak_gib", "host_rss_peak_gib", "dim", "error"])'),
            code("rep.table(analysis.machine_table(run))"),
        ]
    )


def category_notebook(index: int, category) -> tuple[str, nbformat.NotebookNode]:
    stem = f"{index:02d}_{category.id.replace('-', '_')}"
    cells = head(
        f"{index:02d} · {category.title_zh} — {category.title_en}",
        f"One trap category, `{category.id}`: what the trap is, its cases, how each model scores every "
        "query against every document, the margin by which the answer wins or loses, which kinds of "
        "distractor fool which model, and how plain word overlap (BM25) does on the same cases.",
        stem,
        f'category = "{category.id}"',
    ) + [
        md("## What the trap is\n\nFrom the category's declaration in `embedlab.data.categories` (Chinese, with an English gloss)."),
        code("display(Markdown(analysis.category_card(category)))"),
        md("## Its cases\n\nEach query with the documents judged for it: the answer first, then the distractors and their kinds."),
        code('sets = analysis.resolve_datasets(datasets)\ncases = analysis.category_cases(sets, category)\nrep.table(cases, ["dataset", "query_id", "query", "kind", "document"])'),
        code("run = analysis.trap_report(models, sets, cache_dir)"),
        md(
            "## Query × document similarity, per model\n\n"
            "Rows are this category's queries, columns the documents judged for them (the whole corpus for a "
            "small set such as the seed), each labelled `[kind] text` and coloured by kind. A black box marks "
            "the answer; a white dot marks the document the model ranked first. The colour scale is the model's "
            "own (cosine similarity, or the BM25 score)."
        ),
        code('frames = analysis.similarity_frame(run, sets, category=category)\ndraw("heatmap", plots.similarity_figures, frames)'),
        md("## Margin per query and model\n\nBest relevant score minus best non-relevant score: below zero a distractor won. Each model has its own scale."),
        code('draw("margins", plots.margin_figure, analysis.margins(run, category, sets))'),
        md("## Which distractor kinds fool which model\n\nFor each kind: the share of (query, distractor) pairs in which the distractor scored at least as high as the answer."),
        code('beats = analysis.kind_beat_rates(run, category, sets)\ndraw("distractor-kinds", plots.kind_beat_heat, beats)'),
        code('rep.table(beats)'),
        md("## BM25 on the same cases\n\nRank of the answer per query and model (with the kind of document that won when the answer was not first), then each model against BM25 on these queries (paired)."),
        code('draw("ranks", plots.outcome_grid, analysis.outcomes(run, category, sets))'),
        code('rep.table(analysis.lexical_contrast(run, category), ["dataset", "model_a", "model_b", "n", "mean_a", "mean_b", "diff", "diff_low", "diff_high", "p_value", "wins", "ties", "losses"])'),
        md("## Top-1 on this category, with confidence intervals"),
        code('this = analysis.category_table(run, category)\nrep.table(this, ["model", "dataset", "n_queries", "top1", "top1_low", "top1_high", "top3", "mrr", "mean_margin"])'),
        code('draw("top1-by-model", plots.metric_bars, this, "top1")'),
    ]
    return stem, notebook(cells)


def speed_memory() -> nbformat.NotebookNode:
    stem = "09_speed_memory"
    return notebook(
        head(
            "09 · Speed and memory against model size",
            "Load time, texts/s, tokens/s and memory of each model against its size (parameters from the "
            "model record), from the run's own records, with the reference article's reported GPU numbers "
            "beside them as hollow triangles. Ours are measured on this machine (see the table at the end); "
            "the article's on an unstated GPU, for 30 texts at once (a latency, not a throughput).",
            stem,
        )
        + [
            code("run = analysis.trap_report(models, datasets, cache_dir)\nspeed = analysis.speed_table(run)\nrep.table(speed, [\"model\", \"source\", \"dataset\", \"params_m\", \"dtype\", \"max_length\", \"load_s\", \"n_timed\", \"latency_median_s\", \"texts_per_s\", \"throughput_texts_per_s\", \"throughput_tokens_per_s\", \"dim\", \"cached\", \"measured_at\"])"),
            code('display(Markdown(analysis.missing_measurements(speed, ["params_m", "load_s", "texts_per_s", "throughput_tokens_per_s"])))'),
            md("## Texts per second"),
            code('draw("texts-per-s-vs-size", plots.size_scatter, speed, "texts_per_s")'),
            md("## Tokens per second\n\nFrom the throughput pass, for backends that count tokens."),
            code('draw("tokens-per-s-vs-size", plots.size_scatter, speed, "throughput_tokens_per_s")'),
            md(
                "## Memory / 显存与内存\n\n"
                "On a GPU run: the GPU memory of the worker that held the model, on the device it actually used "
                "(`gpu_device`): `weights` (the engine's parameter bytes), `load delta` (after load minus before), "
                "`peak` (highest reading while encoding) and `KV cache` (what the engine allocated; an encoder-only "
                "model such as BGE-M3 may get none). The article measured `torch.cuda.memory_allocated()` after load "
                "minus before, about the weights: compare its hatched bars with `weights` and `load delta`.\n\n"
                "On a CPU run there is no GPU memory: the worker's resident memory is shown, labelled *host RSS, CPU "
                "run*, and the article's GPU figures are not drawn beside it (host RSS includes the Python process, "
                "the tokenizer and the libraries, and is not GPU memory)."
            ),
            code("memory = analysis.memory_frame(run)\ndisplay(Markdown(analysis.memory_note(memory)))\nrep.table(memory)"),
            code('draw("memory-by-model", plots.memory_bars, memory)'),
            code('draw("memory-vs-size", plots.memory_scatter, memory)'),
            md("## Load time"),
            code('draw("load-time-vs-size", plots.size_scatter, speed, "load_s")'),
            md("## The machine behind these numbers"),
            code("rep.table(analysis.machine_table(run))"),
        ]
    )


def dimensions() -> nbformat.NotebookNode:
    stem = "10_dimensions"
    return notebook(
        head(
            "10 · Accuracy against truncated dimension (MRL)",
            "Models trained with Matryoshka representation learning (MRL) keep working when their embedding is "
            "cut to its first *d* components and renormalised. For each chosen model that supports it, the run "
            "is repeated at each dimension through the model's own backend; models without MRL appear once, at "
            "their full dimension.",
            stem,
            "dims = None  # dimensions to try; None: powers of two from the record's mrl_min_dim up to its dim",
        )
        + [
            md("## Which chosen models support MRL\n\nFrom the model records (`mrl_min_dim`)."),
            code('support = analysis.mrl_support(models)\ndisplay(Markdown(analysis.support_note(support, "supports_mrl", "MRL truncation", "mrl_min_dim")))\nrep.table(support)'),
            code("sweep = analysis.dimension_report(models, datasets, dims, cache_dir)\nrep.table(sweep)"),
            md("## Accuracy against dimension"),
            code('draw("top1-vs-dimensions", plots.dimension_curve, sweep, "top1")'),
            code('draw("mrr-vs-dimensions", plots.dimension_curve, sweep, "mrr")'),
        ]
    )


def instructions() -> nbformat.NotebookNode:
    stem = "11_instructions"
    return notebook(
        head(
            "11 · Instructions: none, the article's prompt, English, Chinese",
            "Four ways to present a query:\n\n"
            "1. **no instruction**: the query text alone;\n"
            "2. **article prompt**: wrapped in the reference article's Chinese prompt (`指令: …\\n查询: …`, which it "
            "applied to every model, outside any model's documented template);\n"
            "3. **English instruction**: the documented format, the model record's template with the data set's "
            "English task instruction (Qwen3-Embedding: `Instruct: {task}\\nQuery:{query}`, on queries only). "
            "Qwen3-Embedding's model card advises writing the instruction in English even for multilingual use, so "
            "this is the reference the others are tested against;\n"
            "4. **Chinese instruction**: the same template with the data set's Chinese instruction "
            "(`instruction_zh`), where the data set has one.\n\n"
            "四种查询写法:无指令;文章的中文提示;文档规定的格式配英文任务指令(Qwen3-Embedding 的模型卡建议即使在多语言场景也用英文写指令,"
            "故以此为基准);同一格式配中文指令。\n\n"
            "For a model whose record has no instruction slot, \"no instruction\" and \"English instruction\" are the "
            "same run and there is no Chinese variant. BM25 is left out: for a lexical model a prompt is only more words.",
            stem,
        )
        + [
            md("## Which chosen models take an instruction\n\nRead from each model record's query template."),
            code('support = analysis.instruction_support(models)\ndisplay(Markdown(analysis.support_note(support, "takes_instruction", "a task instruction", "default_instruction")))\nrep.table(support)'),
            md("## The task instructions of each data set\n\nEnglish (what models get by default) and Chinese (the fourth variant; empty where the data set has none)."),
            code("rep.table(analysis.instruction_table(datasets))"),
            md("## What each model receives\n\nThe first query of each data set under each variant, exactly as the record's template formats it."),
            code("rep.table(analysis.variant_prompts(models, datasets))"),
            code('run = analysis.instruction_report(models, datasets, cache_dir)\nvariants = analysis.variant_summary(run)\nrep.table(variants, ["base_model", "variant", "dataset", "n_queries", "top1", "top1_low", "top1_high", "mrr", "mean_margin"])'),
            md("## Side by side"),
            code('draw("top1-by-variant", plots.metric_bars, variants, "top1", hue="variant", x="label")'),
            code('draw("mrr-by-variant", plots.metric_bars, variants, "mrr", hue="variant", x="label")'),
            md(
                "## Paired tests against the documented format\n\n"
                "For each model and data set, each variant against the English instruction on the same queries (top-1): "
                "`diff` is the variant minus the documented format, with its paired bootstrap interval, permutation "
                "p-value and wins / ties / losses (a win: the variant found the answer first where the documented format did not)."
            ),
            code('rep.table(analysis.variant_comparisons(run, "top1"), ["dataset", "base_model", "variant", "n", "mean_a", "mean_b", "diff", "diff_low", "diff_high", "p_value", "wins", "ties", "losses"])'),
        ]
    )


def real_data() -> nbformat.NotebookNode:
    stem = "12_real_data"
    params = """\
models = None  # model names or {name, model, path, backend} mappings; None: the bundled models
samples = None  # {data set: [n_queries, n_docs]} (null = all); None: analysis.REAL_SAMPLES
sample_seed = 0
cache_dir = None  # embedding cache; None: $EMBEDLAB_CACHE_DIR, else .cache/embedlab in the checkout
figures_dir = None  # where figures are saved; None: figures/ in the checkout"""
    return notebook(
        head(
            "12 · Real data: CMRC2018, idioms, CSL, PAWS-X zh",
            "The public sets bundled with embedlab, with confidence intervals, and where lexical overlap "
            "alone already wins. To keep the bundled CPU models within minutes, queries are drawn with a seed "
            "and large corpora are cut: every document judged for a kept query stays, plus a seeded random "
            "draw of the others. Fewer distractors make retrieval easier than on the whole corpus, so compare "
            "models with each other here, not with published scores. The table below says exactly what was kept.",
            stem,
            parameters=params,
        )
        + [
            code("sets = analysis.real_datasets(samples, sample_seed)\nrep.table(analysis.sampling_table(sets))"),
            code('run = analysis.real_data_report(models, sets, cache_dir)\nsummary = run.summary()\nrep.table(summary, ["model", "dataset", "status", "n_queries", "top1", "top1_low", "top1_high", "mrr", "mrr_low", "mrr_high", "ndcg_at_10", "mean_margin"])'),
            md("## Accuracy with confidence intervals"),
            code('draw("mrr-by-model", plots.metric_bars, summary, "mrr")'),
            code('draw("top1-by-model", plots.metric_bars, summary, "top1")'),
            md("## Where lexical overlap alone already wins\n\nBM25 against the best other model on each set's main score (paired over the same queries); the verdict is read from the interval of the difference."),
            code("verdicts = analysis.lexical_verdicts(run, sets, summary=summary)\ndisplay(Markdown(analysis.verdict_note(verdicts)))"),
            md("Per query: does the answer share more of the query's words (jieba) than any other candidate does? Accuracy of each model on the queries where it does and where it does not."),
            code('overlap = analysis.overlap_accuracy(run, analysis.lexical_overlap(sets), "top1")\ndraw("top1-by-overlap", plots.overlap_bars, overlap)'),
            code("rep.table(overlap)"),
        ]
    )


def data_quality() -> nbformat.NotebookNode:
    stem = "13_data_quality"
    params = """\
datasets = None  # trap data sets (names or paths); None: seed + traps-zh
cross_query = False  # True: also ask multilingual-e5-small which answers fit another query (about a minute on 2 cores)
figures_dir = None  # where figures are saved; None: figures/ in the checkout
cache_dir = None  # figure cache; None: $EMBEDLAB_CACHE_DIR, else .cache/embedlab in the checkout"""
    return notebook(
        [
            md(
                "# 13 · Data quality: can form alone find the answer? / 数据质量：只看形式能否找到答案？\n\n"
                "A trap set measures meaning only if its answers and distractors differ in meaning alone. "
                "`embedlab lint` (`embedlab.report.lint`) measures the shortcuts a model could take instead: length "
                "(answers longer than distractors), word overlap with the query (what BM25 uses), and style "
                "(semicolons, question forms, advice openings 可以/应, clause count), per category and overall, "
                "each query ranked among its own answer and distractors. Thresholds and the rules behind each "
                "flag: `docs/writing-traps.md`. No model is run unless `cross_query` is set.\n\n"
                "如果答案总比干扰项长、或与查询共享更多词语、或文风不同，模型不读懂也能得分。本笔记本逐类检查这些形式线索。"
            ),
            code(SETUP + "\nfrom embedlab.report import lint"),
            code(params, parameters=True),
            code(f'figures = rep.figure_folder(figures_dir, "{stem}")\ndraw = rep.Drawer(figures, cache_dir)  # saves PNG + SVG; an unchanged figure is copied from the cache, not redrawn'),
            code("sets = analysis.resolve_datasets(datasets)\nreports = lint.lint_sets(sets, model=cross_query)"),
            md("## The cues\n\nOne row per data set and cue; `flagged` follows `rule`. A flagged cue means form alone separates answers from distractors."),
            code('rep.table(lint.stack(reports, "cues"), ["dataset", "name", "flagged", "auc", "answer_longest_rate", "answer_length_mean", "distractor_length_mean", "top1", "chance", "answer", "distractor", "answer_rate", "distractor_rate", "gap", "rule"])'),
            md("## Length: answers against distractors\n\nEvery document drawn as a dot over its box plot (characters). On a set without a length cue the two boxes of a data set overlap."),
            code('draw("lengths", lint.plot_lengths, lint.stack(reports, "documents"))'),
            md("## Word overlap with the query\n\nPer query: the share of its words (jieba) found in its answer against the mean share found in its distractors. Above the diagonal, word overlap alone points to the answer; a trap's distractors should sit on or above it."),
            code('draw("overlap", lint.plot_overlap, lint.stack(reports, "queries"))'),
            md("## Per category\n\nThe same measures per trap category (`(all)`: the whole set). With fewer than about 25 queries a category's numbers are rough."),
            code('rep.table(lint.stack(reports, "groups"), ["dataset", "category", "n_queries", "n_distractors", "kinds", "length_auc", "answer_longest_rate", "length_judged_top1", "bm25_judged_top1", "chance_top1", "overlap_answer", "overlap_distractor", "semicolon_gap", "question_gap", "advice_gap", "clauses_auc"])'),
            md("## Warnings\n\nUnknown category or kind names close to a known one (typos), small categories, near-duplicate documents and, with `cross_query`, answers that fit another query."),
            code("display(Markdown(lint.warnings_markdown(reports)))"),
        ]
    )


def all_notebooks() -> dict[str, nbformat.NotebookNode]:
    out = {"00_overview": overview()}
    for i, category in enumerate(CATEGORIES, start=1):
        stem, nb = category_notebook(i, category)
        out[stem] = nb
    out["09_speed_memory"] = speed_memory()
    out["10_dimensions"] = dimensions()
    out["11_instructions"] = instructions()
    out["12_real_data"] = real_data()
    out["13_data_quality"] = data_quality()
    return out


def render(nb: nbformat.NotebookNode) -> str:
    """The file text: cell ids are made stable (their position) so regeneration is diff-free."""
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on a difference")
    parser.add_argument("--out", type=Path, default=ROOT / "notebooks")
    args = parser.parse_args(argv)
    stale = []
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, nb in all_notebooks().items():
        path = args.out / f"{stem}.ipynb"
        text = render(nb)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("notebooks differ from scripts/make_notebooks.py (run it): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
