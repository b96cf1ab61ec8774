"""Stage 5, report: what the notebooks show and how they are rendered.

- `analysis`: the notebooks' one name space for views of a run, re-exporting `runs` (the
  report's settings, the trap run with its cue baselines), `views` (cues, one trap category),
  `measured` (speed, memory, machine beside `reported`: the article's numbers, read from
  data/seed/reported.csv), `dimensions`, `instructions`, `public` (public-set samples);
- `plots` (frames in, Axes out), `figure_cache`, `lint` (data-set form cues);
- `render` (`rep` in notebooks: Drawer, save_figure, table), `notebook_files` (listing,
  parameters cell, `needs`), `prime` (the NEEDS registry, computing what notebooks declare),
  `lanes` (executing and rendering notebooks, `build`), `index`, `command` (`embedlab report`).
Imported explicitly: `from embedlab.report import analysis, plots`."""
