"""The eight semantic-trap categories, declared once; notebooks and plots read them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrapCategory:
    """One kind of semantic trap: its id (as used in data files) and how to explain it."""

    id: str
    title_zh: str
    title_en: str
    description_zh: str
    description_en: str
    main_score: str = "top1"


CATEGORIES: tuple[TrapCategory, ...] = (
    TrapCategory(
        "homonym",
        "同形异义 / 一词多义",
        "Homonyms and polysemy",
        "同一个词有多个义项，查询只指其中一个；干扰文档用的是同一个词的另一个义项。",
        "One word, several senses: the query means one of them, a distractor uses another.",
    ),
    TrapCategory(
        "context-name",
        "上下文依赖的名称",
        "Context-dependent names",
        "品牌、地名、人名等名称的所指取决于上下文（苹果公司与水果苹果）。",
        "A name whose referent depends on context (Apple the company vs the fruit).",
    ),
    TrapCategory(
        "idiom",
        "成语典故",
        "Idioms and allusions",
        "成语或典故按其比喻义使用；干扰文档按字面理解其中的字。",
        "A chengyu or allusion used figuratively; a distractor reads its characters literally.",
    ),
    TrapCategory(
        "cross-domain",
        "跨领域术语",
        "Cross-domain terms",
        "同一个术语在不同学科中含义不同（生物学的病毒与计算机病毒）。",
        "A technical term that means different things in different fields.",
    ),
    TrapCategory(
        "near-synonym",
        "近义词辨析",
        "Near-synonyms",
        "两个意思相近的词，查询问的正是其中一个；干扰文档讲的是另一个。",
        "Two close words; the query asks about one, a distractor is about the other.",
    ),
    TrapCategory(
        "antonym",
        "反义关系",
        "Antonyms",
        "查询问的是一方面；干扰文档用大量相同的词讲相反的一面。",
        "The query asks for one side; a distractor states the opposite with the same words.",
    ),
    TrapCategory(
        "metaphor",
        "隐喻比喻",
        "Metaphor",
        "隐喻或比喻按其引申义理解；干扰文档按字面意思理解。",
        "A metaphor meant figuratively; a distractor takes it literally.",
    ),
    TrapCategory(
        "register",
        "语言风格 / 语域",
        "Register",
        "同样的内容用书面语或口语表达，或查询问的正是语言风格。",
        "The same content in formal vs colloquial language, or a query about style.",
    ),
)

CATEGORY_IDS: tuple[str, ...] = tuple(c.id for c in CATEGORIES)

OTHER_ANSWER = "other-answer"
DOCUMENT_KINDS: dict[str, str] = {
    "answer": "the document that answers the query",
    "other-sense": "uses the query's key word in another sense",
    "other-entity": "same name, another referent",
    "literal": "reads an idiom or metaphor literally",
    "antonym": "states the opposite of what the query asks",
    "near-miss": "about the neighbouring concept the query did not ask about",
    "topical": "same topic, shares words, does not answer the query",
    "off-topic": "unrelated",
    OTHER_ANSWER: "the answer of another query (in a shared corpus)",
}

# the Chinese of DOCUMENT_KINDS (teaching pages: exercises, handouts)
DOCUMENT_KINDS_ZH: dict[str, str] = {
    "answer": "回答查询的文档",
    "other-sense": "用了查询里的关键词,但取的是另一个意思",
    "other-entity": "同一个名字,指的是另一个对象",
    "literal": "按字面去理解成语或比喻",
    "antonym": "说的正好是查询所问的反面",
    "near-miss": "讲的是相邻的概念,不是查询问的那个",
    "topical": "话题相同、词语相同,却没有回答查询",
    "off-topic": "毫不相关",
    OTHER_ANSWER: "另一条查询的答案(语料共用)",
}

# short labels of the kinds, (Chinese, English), for tables and cases ("" = a document without a kind)
KIND_LABELS: dict[str, tuple[str, str]] = {
    "answer": ("答案", "answer"),
    "other-sense": ("另一义项", "other sense"),
    "other-entity": ("同名他物", "other entity"),
    "literal": ("字面理解", "literal reading"),
    "antonym": ("反义", "antonym"),
    "near-miss": ("相邻概念", "near miss"),
    "topical": ("同话题", "topical"),
    "off-topic": ("无关", "off-topic"),
    OTHER_ANSWER: ("别的查询的答案", "another query's answer"),
    "": ("未标注", "unlabelled"),
    "unjudged": ("未评判", "unjudged"),  # a document a query does not judge (the explorers)
    "candidate": ("候选", "candidate"),  # a document typed into the trap explorer
}


def kind_for_query(kind: str, relevant: bool) -> str:
    """A document's kind as one query sees it: "answer" only when it answers that query;
    a document that answers another query is "other-answer"; distractor kinds stay, and an
    unlabelled document stays "". The one place this rule lives."""
    if relevant:
        return "answer"
    return OTHER_ANSWER if kind == "answer" else kind


def get_category(category_id: str) -> TrapCategory:
    """The declaration of a category id; KeyError names the known ids."""
    for category in CATEGORIES:
        if category.id == category_id:
            return category
    raise KeyError(f"unknown trap category {category_id!r}; known: {', '.join(CATEGORY_IDS)}")
