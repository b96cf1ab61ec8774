"""The lines a report page opens with, computed from its numbers (embedlab.report.findings),
and the number formats every table uses (embedlab.report.formats), on hand-checkable frames."""

from __future__ import annotations

import pandas as pd

from embedlab.report import findings, formats


def _summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["a", "b", "c", "length", "a", "b"],
            "dataset": ["big", "big", "big", "big", "tiny", "tiny"],
            "status": ["ok"] * 6,
            "n_queries": [40, 40, 40, 40, 2, 2],
            "top1": [0.80, 0.60, 0.75, 0.30, 1.0, 0.5],
            "top1_low": [0.65, 0.45, 0.60, 0.18, 0.3, 0.1],
            "top1_high": [0.90, 0.74, 0.86, 0.45, 1.0, 0.9],
        }
    )


def _comparisons() -> pd.DataFrame:
    rows = [
        ("big", "a", "b", 0.20, 0.05, 0.35, 0.004),
        ("big", "c", "a", -0.05, -0.15, 0.05, 0.40),  # stored the other way round: a - c = +0.05
        ("big", "a", "length", 0.50, 0.35, 0.65, 0.0002),
    ]
    frame = pd.DataFrame(rows, columns=["dataset", "model_a", "model_b", "diff", "diff_low", "diff_high", "p_holm"])
    return frame.assign(p_value=frame["p_holm"], n=40)


def test_lead_names_the_leader_its_margin_interval_and_test() -> None:
    finding = findings.lead(_summary(), _comparisons(), "top1", cues=["length"])
    assert finding.headline == (
        "On big, a leads with top-1 0.80 (95% CI 0.65–0.90), n = 40 queries, "
        "0.05 above c (0.75, difference CI -0.05 to +0.15, p = 0.400)."
    )
    text = "\n".join(finding.lines)
    assert "a is ahead of b on big" in text  # p 0.004 < 0.05
    assert "not clearly ahead of c on big" in text  # p 0.40
    assert "length, scores 0.30: a is clearly ahead of it (+0.50, difference CI +0.35 to +0.65, p < 0.001)" in text
    assert "On tiny: 2 queries only, too few to rank the models." in text


def test_lead_says_when_a_cue_is_not_beaten_and_when_nothing_ran() -> None:
    summary = _summary()
    summary.loc[summary["model"] == "length", "top1"] = 0.78
    comparisons = _comparisons()
    comparisons.loc[comparisons["model_b"] == "length", ["diff", "diff_low", "diff_high", "p_holm", "p_value"]] = [0.02, -0.1, 0.14, 0.7, 0.7]
    text = "\n".join(findings.lead(summary, comparisons, cues=["length"]).lines)
    assert "length, scores 0.78: a is not clearly ahead of it (+0.02" in text
    failed = summary.assign(status="failed")
    assert findings.lead(failed).headline == "no model produced results."


def test_finding_displays_markdown_and_carries_its_headline_as_metadata() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shown = []
    shell.display_pub.publish = lambda data, metadata=None, **kw: shown.append((data, metadata))
    try:
        findings.Finding("x leads", ("one", "two"))._ipython_display_()
    finally:
        InteractiveShell.clear_instance()
    ((data, metadata),) = shown
    assert data["text/markdown"] == "**x leads**\n\n- one\n- two"
    assert data["text/html"] == "<div class='embedlab-finding'><p><strong>x leads</strong></p><ul><li>one</li><li>two</li></ul></div>"
    assert metadata == {findings.FINDING_KEY: "x leads"}


def test_speed_lead_uses_only_this_machine_and_says_why_there_are_several_speeds() -> None:
    speed = pd.DataFrame(
        {
            "model": ["fast", "slow", "gpu-article"],
            "source": ["measured here", "measured here", "reported"],
            "texts_per_s": [100.0, 10.0, 5000.0],
            "throughput_texts_per_s": [200.0, 20.0, None],
        }
    )
    finding = findings.speed_lead(speed, "measured here", gpu=False)
    assert finding.headline == "fast is fastest on this machine's CPU: 200.0 texts/s in the throughput pass, 10.0× slow."
    assert any("several speeds" in line for line in finding.lines)


def test_formats_by_kind() -> None:
    assert formats.p_value(0.0004) == "< 0.001" and formats.p_text(0.0004) == "p < 0.001" and formats.p_text(0.05) == "p = 0.050"
    assert formats.formatter("memory_gib")(23.540279388427734) == "23.54"
    assert formats.formatter("texts_per_s")(4004805.772) == "4,004,805.8"
    assert formats.formatter("p_holm")(0.0) == "< 0.001"
    assert formats.formatter("max_length")(512.0) == "512" and formats.formatter("n_queries")(float("nan")) == "–"
    assert formats.formatter("top1")(0.12345) == "0.123"


def test_tables_keep_twenty_rows_inline_and_hide_when_empty() -> None:
    from embedlab.report import render as rep

    html = rep.table(pd.DataFrame({"q": [f"q{i}" for i in range(30)], "p_value": [0.0001] * 30}))._repr_html_()
    inline, _, collapsed = html.partition("<details>")
    assert inline.count("<tr") == 21 and "all 30 rows" in collapsed and "&lt; 0.001" in inline
    assert rep.table(pd.DataFrame({"q": []}))._repr_html_() == ""
    assert "nothing ran" in rep.table(pd.DataFrame({"q": []}), empty="nothing ran")._repr_html_()


def test_a_figure_with_nothing_drawn_becomes_a_sentence(tmp_path) -> None:
    from embedlab.report import plots
    from embedlab.report import render as rep

    draw = rep.Drawer(tmp_path, tmp_path / "cache")
    shown = draw("empty", plots.grouped_bars, pd.DataFrame({"model": [], "top1": []}), "model", "top1")
    assert isinstance(shown, rep.Sentence) and shown.text == "No data." and not list(tmp_path.glob("*.png"))
    drawn = draw("bars", plots.grouped_bars, pd.DataFrame({"model": ["a"], "top1": [0.5]}), "model", "top1")
    assert isinstance(drawn, rep.SavedFigure) and drawn.png.exists()
