"""Interactive explorers for JupyterLab (ipywidgets, the `notebooks` extra): `trap()` lets a
teacher type a query and candidate documents and watch each model score them live
(`explore.trap`); `results()` lets an analyst filter a run's queries and open one query's
heatmap row and ranked documents (`explore.results`, over the tables of `report.views`).

Both return an object that displays as a live widget in a kernel and, where no live kernel
renders it (nbconvert HTML, a GitHub preview), as static HTML of its initial state: the
display bundle carries both, and a viewer without the widget manager shows the HTML.
`side_by_side()` shows two models' rankings of one query next to each other,
`semantic_map()` draws a category's queries and documents per model (PCA of the run's
embeddings), `export_failures()` writes the queries a model gets wrong as a trap file. Every
label speaks `lang` (zh / en / both, `report.lang`).
An entry point: it may import every stage."""

from embedlab.explore.compare import DISAGREE_CLASS, SideBySide, side_by_side, side_by_side_frame
from embedlab.explore.export import export_failures, failures, failures_trap
from embedlab.explore.models import EXPLORE_SETTINGS, ModelRuns, load_model
from embedlab.explore.results import ResultsExplorer, results
from embedlab.explore.runs import run_settings, with_scores
from embedlab.explore.semantic_map import map_figure, map_frames, pca_2d, run_embeddings, semantic_map
from embedlab.explore.trap import (
    BAR_CLASS,
    Candidate,
    TrapExplorer,
    bars_html,
    candidate_scores,
    classroom_models,
    trap,
    trap_candidates,
)
from embedlab.explore.widgets import ALL, NO_COMPARISON, TEXTS, say
from embedlab.report.exercises import FOOL_BM25_KEY, GoalCheck, exercise_start, goal_check, loss_explanation
from embedlab.report.views import (
    OUTCOMES,
    category_losses,
    heatmap_frame,
    loss_note,
    query_outcomes,
    query_table,
    ranked_documents,
)

__all__ = [
    "ALL",
    "BAR_CLASS",
    "DISAGREE_CLASS",
    "EXPLORE_SETTINGS",
    "FOOL_BM25_KEY",
    "NO_COMPARISON",
    "OUTCOMES",
    "TEXTS",
    "Candidate",
    "GoalCheck",
    "ModelRuns",
    "ResultsExplorer",
    "SideBySide",
    "TrapExplorer",
    "bars_html",
    "candidate_scores",
    "category_losses",
    "classroom_models",
    "exercise_start",
    "export_failures",
    "failures",
    "failures_trap",
    "goal_check",
    "heatmap_frame",
    "load_model",
    "loss_explanation",
    "loss_note",
    "map_figure",
    "map_frames",
    "pca_2d",
    "query_outcomes",
    "query_table",
    "ranked_documents",
    "results",
    "run_embeddings",
    "run_settings",
    "say",
    "semantic_map",
    "side_by_side",
    "side_by_side_frame",
    "trap",
    "trap_candidates",
    "with_scores",
]
