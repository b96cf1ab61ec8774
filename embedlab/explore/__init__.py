"""Interactive explorers for JupyterLab (ipywidgets, the `notebooks` extra): `trap()` lets a
teacher type a query and candidate documents and watch each model score them live
(`explore.trap`); `results()` lets an analyst filter a run's queries and open one query's
heatmap row and ranked documents (`explore.results`, over the tables of `report.views`).

Both return an object that displays as a live widget in a kernel and, where no live kernel
renders it (nbconvert HTML, a GitHub preview), as static HTML of its initial state: the
display bundle carries both, and a viewer without the widget manager shows the HTML.
An entry point: it may import every stage."""

from embedlab.explore.models import EXPLORE_SETTINGS, ModelRuns, load_model
from embedlab.explore.results import ResultsExplorer, results, with_scores
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
from embedlab.explore.widgets import ALL, NO_COMPARISON
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
    "EXPLORE_SETTINGS",
    "FOOL_BM25_KEY",
    "NO_COMPARISON",
    "OUTCOMES",
    "Candidate",
    "GoalCheck",
    "ModelRuns",
    "ResultsExplorer",
    "TrapExplorer",
    "bars_html",
    "candidate_scores",
    "category_losses",
    "classroom_models",
    "exercise_start",
    "goal_check",
    "heatmap_frame",
    "load_model",
    "loss_explanation",
    "loss_note",
    "query_outcomes",
    "query_table",
    "ranked_documents",
    "results",
    "trap",
    "trap_candidates",
    "with_scores",
]
