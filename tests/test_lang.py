import pytest

from embedlab.report.lang import LANGS, check_lang, pick


def test_pick_each_language():
    assert pick("答案", "answer", "zh") == "答案"
    assert pick("答案", "answer", "en") == "answer"
    assert pick("答案", "answer", "both") == "答案 / answer"
    assert pick("一段。", "A paragraph.", "both", "\n\n") == "一段。\n\nA paragraph."


def test_unknown_language_names_the_choices():
    with pytest.raises(ValueError, match="zh, en, both.*'fr'"):
        check_lang("fr")
    assert all(check_lang(lang) == lang for lang in LANGS)


def test_every_document_kind_has_its_chinese_and_a_short_label():
    from embedlab.data.categories import DOCUMENT_KINDS, DOCUMENT_KINDS_ZH, KIND_LABELS

    assert set(DOCUMENT_KINDS_ZH) == set(DOCUMENT_KINDS)
    assert set(DOCUMENT_KINDS) <= set(KIND_LABELS)
    assert all(zh and en and zh != en for zh, en in KIND_LABELS.values())
