# %% [markdown]
# # 15 · 语义陷阱探索 — Exploring semantic traps
#
# 给课堂用的笔记本:先输入一个查询和几段候选文档,看每个模型怎样给它们打分;再打开一次评测的结果,逐条查看模型在哪里出错。
#
# For the classroom: type a query and a few candidate documents and watch how each model scores them; then open a run's results and see, query by query, where a model goes wrong.
#
# 在 JupyterLab 里运行本笔记本才能交互;HTML 报告只显示初始状态。
# Run this notebook in JupyterLab to interact with it; the HTML report shows only the initial state. Parameters (papermill): `models`, `datasets`, `cache_dir`, `figures_dir`.

# %%
from IPython.display import Markdown, display

from embedlab import explore
from embedlab.report import analysis, findings, plots
from embedlab.report import render as rep

font = plots.use_style()  # the style sheet and the CJK font every figure uses

# %% tags=["parameters"]
models = None  # model names or {name, model, path, backend} mappings; None: the bundled models
datasets = None  # trap data sets (names or paths); None: seed + traps-zh
cache_dir = None  # embedding cache; None: $EMBEDLAB_CACHE_DIR, else .cache/embedlab in the checkout
figures_dir = None  # where figures are saved; None: figures/ in the checkout
needs = {"trap_report": {}}  # runs primed into the cache before this notebook executes (scripts/make_notebooks.py)

# %%
models = explore.classroom_models(models)  # the exercises name BM25, USE and e5-small: they are always here
lexical, use, e5 = "bm25", "use-multilingual-v3", "multilingual-e5-small"
run = analysis.trap_report(models, datasets, cache_dir)
display(findings.lead(run.summary(), run.comparisons("top1"), "top1", subject="In the run this page explores: "))

# %% [markdown]
# ## 1 · 陷阱探索器 / The trap explorer
#
# 选择一个陷阱(或自己输入查询),修改、添加或删除候选文档,勾选哪一段是答案。每个模型一组条形图:★ 标出它排在第一的文档,标题里是差距(答案得分 − 最高的其他文档得分,小于零说明干扰项赢了)。稠密模型的分数是余弦相似度;BM25 的分数是它自己的单位,只能和同一组里的其他条比较。只有改动过的文本会重新编码。
#
# Pick a trap (or type your own query), edit, add or remove candidate documents, and tick which one is the answer. Each model gets a group of bars: ★ marks the document it ranks first, and the title gives the margin (answer score − best other score; below zero a distractor won). Dense models score by cosine similarity; BM25's score has its own units, comparable only within its own group. Only the text you changed is encoded again.

# %%
explore.trap(models)

# %% [markdown]
# ## 练习一 / Exercise 1 · 骗过 BM25,骗不过 e5-small / Fool BM25 but not e5-small
#
# 写一个陷阱:BM25 把干扰项排第一,而 e5-small 把答案排第一。提示:让干扰项重复查询里的词,但意思不同;让答案换一种说法表达同一个意思。
#
# Write a trap in which BM25 ranks a distractor first while e5-small ranks the answer first. Hint: let a distractor repeat the query's words in another sense, and let the answer say the same thing in other words.
#
# 探索器从一个还没有达成目标的陷阱开始(按规则从评测结果中选出:两个模型都答对、BM25 最有把握的那一条);在它的基础上改写。
# The explorer starts from a trap that does not meet the goal yet (chosen from the run by a rule: the one both models get right on which BM25 is surest); rewrite it.

# %%
exercise = explore.trap(models, *explore.exercise_start(run, fooled=lexical, holds=e5))
display(exercise)

# %% [markdown]
# 改完之后运行下一格:它读出探索器现在的状态,告诉你是否达成了目标(BM25 的 `outcome` 应为 "distractor first",e5-small 的应为 "answer first")。
# When you are done, run the next cell: it reads the explorer's current state and says whether the goal is met (BM25's `outcome` should read "distractor first", e5-small's "answer first").

# %%
rep.table(exercise.summary())
display(explore.goal_check(exercise.summary(), fooled=lexical, holds=e5))

# %% [markdown] tags=["answer"]
# ### 答案 / Answer key · 练习一 / Exercise 1
#
# 一个做好的陷阱:“苹果”是同形词(公司 / 水果)。两段干扰项重复查询里的“苹果”“多久”,讲的却是水果;答案换一种说法(iPhone、续航),不和查询共用这些词。下面的探索器和检查都是现场算的。
#
# A worked trap: 苹果 is a homonym (the company / the fruit). The distractors repeat the query's 苹果 and 多久 but are about the fruit; the answer says the same in other words (iPhone, battery life) without those words. The explorer and the check below are computed live.

# %% tags=["answer"]
key = explore.trap(models, **explore.FOOL_BM25_KEY)
display(key)
display(explore.goal_check(key.summary(), fooled=lexical, holds=e5))

# %% [markdown] tags=["answer"]
# 评测里已经达成这个目标的陷阱(e5-small 答对、BM25 答错,从结果中算出):
# The traps of the run that already meet the goal (e5-small right, BM25 wrong; computed from the results):

# %% tags=["answer"]
fooled = explore.query_table(run, e5, compare=lexical, outcome="won")
rep.table(fooled, ["dataset", "query_id", "category", "query", "winner_kind_b", "margin", "margin_b"])

# %% [markdown]
# ## 2 · 结果浏览器 / The results explorer
#
# 按数据集、模型、类别和结果(won 答对 / lost 答错 / tied 并列)筛选查询;选中一条查询,可以看到它的热力图行、各模型排在前面的文档及其类型,以及差距。选择 "compare with" 比较两个模型时,结果指前一个模型相对于后一个:两者不一致的查询排在最前面。
#
# Filter the queries by data set, model, category and outcome (won / lost / tied); select a query to see its heatmap row, the documents each model ranked highest with their kinds, and the margin. With "compare with", the outcome is the first model's against the second's, and the queries where they disagree come first.

# %%
explore.results(run)

# %% [markdown]
# ## 练习二 / Exercise 2 · USE 在哪一类输给 e5-small 最多? / Where does USE lose most to e5-small?
#
# 每个数据集和类别:USE 答错而 e5-small 答对的查询数(losses),反过来的数目(wins)和两者的 top-1。第一行就是 USE 输得最多的类别。
#
# Per data set and category: the queries USE gets wrong and e5-small right (losses), the reverse (wins), and both top-1 rates. The first row is the category where USE loses most.

# %%
losses = explore.category_losses(run, use, e5)
rep.table(losses)

# %% [markdown]
# 浏览器已经筛到这一类里 USE 输掉的查询。选一条,看 USE 把哪种干扰项排在了答案前面,然后用自己的话解释原因。
# The explorer below is filtered to the queries of that category that USE loses. Pick one, see which kind of distractor USE put above the answer, and explain why in your own words.

# %%
worst = losses.iloc[0]
lost = explore.results(run, dataset=worst["dataset"], model=use, compare=e5, category=worst["category"], outcome="lost")
display(lost)

# %%
first = lost.table().iloc[0]
display(Markdown(explore.loss_note(run, use, e5, first["dataset"], first["query_id"])))

# %% [markdown]
# **你的解释 / Your explanation:** 这段干扰项和查询共享了什么(字面、话题、实体)?答案又是怎样换一种说法表达同一个意思的? / What does the distractor share with the query (words, topic, entity), and how does the answer say the same thing in other words?

# %% [markdown] tags=["answer"]
# ### 答案 / Answer key · 练习二 / Exercise 2
#
# 从这次评测算出:USE 在这一类里把哪些类型的干扰项排在了答案前面,以及上面那条查询里干扰项和答案各与查询共有哪些词。
#
# Computed from this run: which kinds of distractor USE put above the answer in this category, and, for the query above, the words the distractor and the answer each share with the query.

# %% tags=["answer"]
display(Markdown(explore.loss_explanation(run, use, e5, first["dataset"], worst["category"], first["query_id"])))

# %% [markdown]
# ## 3 · 两个模型并排 / Two models side by side
#
# 同一条查询,两个模型的排序并排显示:名次、文档类型、得分,以及同一段文档在另一个模型里的名次。只在一个模型前五名里的文档(另一个模型排在五名以外)用黄色标出,只有一个模型排第一的答案也标黄;如果两者排在第一的文档不同,第一行标成红色;答案加粗。每一栏的标题是该模型的差距(答案得分 − 其他文档最高分)。下面选的是 e5-small 和 BM25 结果不一致的第一条查询(从结果中算出)。在结果浏览器里选择 "compare with",也会看到同样的并排视图。
#
# One query, two models' rankings next to each other: rank, document kind, score, and the same document's rank under the other model. A document in one model's top five that the other ranks below five is highlighted in yellow, as is the answer when only one model ranks it first; when their first documents differ, the first rows are red; the answer is bold. Each column's title gives that model's margin (answer score − best other score). Below: the first query on which e5-small and BM25 disagree (computed from the results). Choosing "compare with" in the results explorer shows the same view.

# %%
disagree = explore.query_table(run, e5, compare=lexical)
pair = disagree.iloc[0]
explore.side_by_side(run, e5, lexical, pair["query_id"], pair["dataset"])

# %% [markdown]
# ## 4 · 语义地图 / A map of a category
#
# 把一个类别的查询(×)和文档(●,颜色表示类型)的向量投影到二维(主成分分析 PCA,取 L2 归一化向量的前两个主成分),每个模型一幅图。绿线连到答案;模型把干扰项排在答案前面时,红色虚线连到那段干扰项。坐标轴上写着每个主成分解释的方差比例:两维只保留了一部分信息,图上近的点在原空间里不一定最近。BM25 按词打分,没有向量,所以它那一格只有说明。向量来自这次评测的嵌入缓存,不会重新计算。这里画的是 BM25 输给 e5-small 最多的类别。
#
# The vectors of one category's queries (×) and documents (●, coloured by kind) projected to two dimensions (PCA: the first two principal components of the L2-normalised embeddings), one panel per model. A green line joins each query to its answer; where the model ranked a distractor above the answer, a red dashed line joins the query to that distractor. Each axis gives the share of the variance its component explains: two dimensions keep only part of the picture, so points close on the map are not always the closest in the model's space. BM25 scores words and has no vectors, so its panel holds only a note. The vectors come from this run's embedding cache; nothing is encoded again. Drawn here: the category where BM25 loses most to e5-small.

# %%
figures = rep.figure_folder(figures_dir, "15_explore")
draw = rep.Drawer(figures, cache_dir)
mapped = explore.category_losses(run, lexical, e5).iloc[0]
draw("map", explore.semantic_map, run, mapped["category"], [lexical, use, e5], mapped["dataset"], cache_dir=cache_dir)

# %% [markdown]
# ## 5 · 导出错题 / Export the failures
#
# 把一个模型答错的查询写成陷阱文件(YAML,格式和 `data/traps-zh` 相同),留给下一堂课:文件头写明它来自哪个数据集、哪个模型。结果浏览器里的 "导出错题 / export failures" 按钮按当前的筛选条件做同样的事。下面导出 USE 在上面那个数据集里答错的查询,再用数据集加载器读回来。
#
# Write the queries a model gets wrong as a trap file (YAML, the format of `data/traps-zh`) for the next lesson; its header names the data set and the model it came from. The "导出错题 / export failures" button of the results explorer does the same under its current filters. Below: the queries USE gets wrong on the data set above, exported and read back with the data set loader.

# %%
exported = explore.export_failures(run, figures / "failures-use.yaml", use, dataset=mapped["dataset"])
again = analysis.resolve_datasets([exported])[0]
display(Markdown(f"`{exported.name}`: {len(again.queries)} queries. {again.meta.description}"))
rep.table(again.queries_frame(), ["query_id", "category", "text"])

# %% [markdown]
# 在终端里检查并运行它 / Check it and run it in a terminal:
#
# ```bash
# embedlab lint failures-use.yaml
# embedlab run -m bm25 -m multilingual-e5-small -d failures-use.yaml --out results/failures-use
# ```
