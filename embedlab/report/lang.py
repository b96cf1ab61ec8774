"""Which language a teaching page speaks: Chinese, English or both (the explorers, the
handouts, `embedlab teach`). Texts are written once as a (Chinese, English) pair and
picked here, so every page switches the same way."""

from __future__ import annotations

LANGS = ("zh", "en", "both")
SEPARATOR = " / "  # between the Chinese and the English of a short label in "both"


def check_lang(lang: str) -> str:
    """`lang` itself, or ValueError naming the choices."""
    if lang not in LANGS:
        raise ValueError(f"lang: expected one of {', '.join(LANGS)}, got {lang!r}")
    return lang


def kind_label(kind: str, lang: str) -> str:
    """A document kind's short label in `lang` (`data.categories.KIND_LABELS`); an unknown
    kind as it is."""
    from embedlab.data.categories import KIND_LABELS

    return pick(*KIND_LABELS[kind], lang) if kind in KIND_LABELS else kind


def pick(zh: str, en: str, lang: str, separator: str = SEPARATOR) -> str:
    """The text of a (Chinese, English) pair in `lang`; "both" joins them with `separator`
    (a short label: " / "; a paragraph: "\\n\\n")."""
    check_lang(lang)
    if lang == "zh":
        return zh
    if lang == "en":
        return en
    return f"{zh}{separator}{en}"
