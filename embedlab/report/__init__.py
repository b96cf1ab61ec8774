"""Stage 5, report: views of a Report for notebooks (analysis), plot functions that take
frames and return Axes (plots), the figure cache, data-set lint, and rendering the notebooks
to HTML (render). Imported explicitly: `from embedlab.report import analysis, plots`."""
