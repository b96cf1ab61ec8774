"""What the notebooks show, computed: the public face of the report stage's views, one name
space for the notebooks (`from embedlab.report import analysis`). Each name lives in the
module of its concern:

- `runs`: the report's measurement settings, resolving models and data sets, the trap run
  with its cue baselines (through the embedding cache);
- `views`: a trap run beside the cue baselines, and per trap category its cases, similarity
  matrices, margins, distractor kinds, BM25 on the same cases;
- `measured`: speed, memory and the machine of a run, beside the article's reported numbers
  (`reported`: read from data/seed/reported.csv);
- `dimensions`: MRL dimension sweeps; `instructions`: instruction variants;
- `public`: samples of the public sets and their lexical overlap;
- `pipelines`: fusion, BGE-M3 modes and reranking per trap category (notebook 14).

Every function returns a long-format DataFrame, a Report or Markdown text; `embedlab.report.plots`
draws the frames. Nothing here draws, prints or writes files (the cache aside)."""

from __future__ import annotations

from embedlab.report.dimensions import (  # noqa: F401
    dimension_report,
    mrl_support,
    support_note,
    sweep_dimensions,
)
from embedlab.report.instructions import (  # noqa: F401
    ARTICLE_INSTRUCTION,
    ARTICLE_PROMPT,
    DOCUMENTED,
    VARIANTS,
    chinese_instruction,
    instruction_report,
    instruction_support,
    instruction_table,
    instruction_variants,
    variant_comparisons,
    variant_prompts,
    variant_summary,
)
from embedlab.report.measured import (  # noqa: F401
    GPU_MEMORY_MEASURES,
    HOST_MEMORY_MEASURES,
    HOST_RSS_LABEL,
    MEASURED_LABEL,
    MEMORY_FRAME_COLUMNS,
    REPORTED_LABEL,
    REPORTED_MEMORY_MEASURE,
    machine_table,
    memory_frame,
    memory_note,
    missing_measurements,
    on_gpu,
    reported_beside_measured,
    speed_table,
)
from embedlab.report.pipelines import (  # noqa: F401
    PipelinePlan,
    category_tests,
    pipeline_kinds,
    pipeline_plan,
    pipeline_report,
    pipeline_summary,
    rerank_cost,
    skipped_note,
    tests_note,
)
from embedlab.report.public import (  # noqa: F401
    REAL_SAMPLES,
    Sample,
    lexical_overlap,
    lexical_verdicts,
    overlap_accuracy,
    real_data_report,
    real_datasets,
    sampling_table,
    subsample,
    verdict_note,
)
from embedlab.report.reported import (  # noqa: F401
    ARTICLE_REPORTED,
)
from embedlab.report.runs import (  # noqa: F401
    CUE_BASELINES,
    CUE_LABEL,
    LIGHT_SETTINGS,
    REAL_DATA_SETTINGS,
    REPORT_SETTINGS,
    TRAP_SETS,
    resolve_datasets,
    resolve_models,
    trap_report,
    with_cue_baselines,
)
from embedlab.report.views import (  # noqa: F401
    CUE_RULE,
    MIN_QUERIES,
    category_card,
    category_cases,
    category_comparisons,
    category_query_ids,
    category_table,
    choice_frame,
    cue_flags,
    cue_models,
    cue_note,
    cue_table,
    device_label,
    kind_beat_rates,
    lexical_contrast,
    margins,
    outcomes,
    similarity_frame,
    top_ranked,
    with_enough_queries,
)
