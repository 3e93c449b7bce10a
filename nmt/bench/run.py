"""``nmt bench``: what the machine gives and what training and decoding get out of it.

Each measurement runs in a fresh process (so its peak resident memory is its own) with ``threads`` torch threads:
the fp32 matmul ceiling at large sizes and at the model's own shapes (and the bf16 one when training runs under
``train.precision=bf16``), training throughput over a window after warm-up (through the same
``nmt.training.train.update`` that ``nmt train`` uses), useful FLOP/s (counted from shapes on real tokens,
nmt.model.flops) as a share of the ceiling, and decoding speed and BLEU of a trained checkpoint on the test split,
greedy and beam, in fp32 and with int8 dynamic quantization."""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing as mp
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import torch

from nmt.bench import contention
from nmt.choices import Precision
from nmt.config import BenchConfig, Config, DecodeConfig
from nmt.data.load import load_split, resolve_path
from nmt.data.tokenizer import PAD
from nmt.errors import NMTError
from nmt.evaluation.metrics import bleu
from nmt.model.base import n_params
from nmt.model.flops import training_flops
from nmt.runtime import precision
from nmt.runtime.threads import configure as configure_threads


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def matmul_gflops(m: int, k: int, n: int, repeats: int = 10, dtype: torch.dtype = torch.float32) -> float:
    """Median GFLOP/s of an (m, k) @ (k, n) product in ``dtype``."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * m * k * n / statistics.median(times) / 1e9


def _ceiling(bc: BenchConfig) -> dict:
    m = bc.model
    h3, rows = 3 * m.hidden_dim, 128
    n = bc.ceiling_size
    shapes = {
        "large": (n, n, n),
        f"GRU input {rows}x{m.emb_dim + 2 * m.hidden_dim}x{h3}": (rows, m.emb_dim + 2 * m.hidden_dim, h3),
        f"GRU recurrent {rows}x{m.hidden_dim}x{h3}": (rows, m.hidden_dim, h3),
        f"output layer 4096x{m.maxout_dim}x{bc.data.vocab_size}": (4096, m.maxout_dim, bc.data.vocab_size),
    }
    res = {name: round(matmul_gflops(*s), 1) for name, s in shapes.items()}
    # what bf16 autocast's products can reach, beside the fp32 ceiling (matmuls run on the CPU)
    if precision.resolve(bc.train.precision, torch.device("cpu")) == Precision.bf16:
        res["large bf16"] = round(matmul_gflops(n, n, n, dtype=torch.bfloat16), 1)
    return res


def _fresh_run(bc: BenchConfig, run_dir: str):
    """A new training run with the bench's data, model and training settings, in ``run_dir``."""
    from nmt.training.run import setup

    tc = replace(bc.train, threads=bc.threads, keep_last=0)
    run = setup(Config(data=bc.data, model=bc.model, train=tc, name="bench", run_dir=run_dir))
    run.model.train()
    return run


def _batch_indices(run) -> Iterator[list[int]]:
    """The run's batches (as index lists), epoch after epoch, without end."""
    for epoch in itertools.count():
        yield from run.batches.epoch(epoch)


def _train(bc: BenchConfig) -> dict:
    from nmt.training.train import update

    with tempfile.TemporaryDirectory() as tmp:
        run = _fresh_run(bc, tmp)
        stats = {"updates": 0, "seconds": 0.0, "tgt_tokens": 0, "src_tokens": 0, "sentences": 0,
                 "src_positions": 0, "tgt_positions": 0, "flops": 0}
        for done, idx in enumerate(itertools.islice(_batch_indices(run), bc.warmup + bc.measure), start=1):
            start = time.perf_counter()
            batch = run.batches.make(idx).to(run.device)  # building the batch is part of a measured update
            with run.runtime.threads.timed(batch.n_tgt_tokens):  # threads=auto: each update, as in training
                update(run, batch)
            elapsed = time.perf_counter() - start
            if done <= bc.warmup:
                continue
            src_lens = batch.src_len.tolist()
            tgt_lens = (batch.tgt_out != PAD).sum(1).tolist()
            stats["updates"] += 1
            stats["seconds"] += elapsed
            stats["tgt_tokens"] += sum(tgt_lens)
            stats["src_tokens"] += sum(src_lens)
            stats["sentences"] += len(src_lens)
            stats["src_positions"] += batch.src.numel()
            stats["tgt_positions"] += batch.tgt_out.numel()
            stats["flops"] += training_flops(bc.model, run.model.tgt_vocab, src_lens, tgt_lens)
    s = stats
    return {
        "tgt_tok_s": s["tgt_tokens"] / s["seconds"],
        "src_tgt_tok_s": (s["tgt_tokens"] + s["src_tokens"]) / s["seconds"],
        "s_per_update": s["seconds"] / s["updates"],
        "sentences_per_update": s["sentences"] / s["updates"],
        "tgt_tokens_per_update": s["tgt_tokens"] / s["updates"],
        "padding_share": 1 - (s["tgt_tokens"] + s["src_tokens"]) / (s["tgt_positions"] + s["src_positions"]),
        "useful_gflop_s": s["flops"] / s["seconds"] / 1e9,
        "updates": s["updates"],
        "threads": run.runtime.threads.current,
        "params": n_params(run.model),
        "peak_rss_mb": peak_rss_mb(),
    }


def _dev_after_tokens(bc: BenchConfig) -> dict:
    """Train a fresh model (the training settings above) until it has seen ``bc.dev_after_tokens`` target tokens,
    then its teacher-forced cross-entropy on the dev split: per target piece (EOS included), as a perplexity, and
    per reference word (whitespace words plus one EOS per sentence), which does not depend on the segmentation."""
    from nmt.training.train import update
    from nmt.training.validate import dev_cross_entropy

    with tempfile.TemporaryDirectory() as tmp:
        run = _fresh_run(bc, tmp)
        tokens, updates, start = 0, 0, time.perf_counter()
        for idx in _batch_indices(run):
            batch = run.batches.make(idx).to(run.device)
            update(run, batch)
            tokens, updates = tokens + batch.n_tgt_tokens, updates + 1
            if tokens >= bc.dev_after_tokens:
                break
        seconds = time.perf_counter() - start
        nats, pieces = dev_cross_entropy(run.model.eval(), run.corpus, bc.train.batch_tokens)
        words = sum(len(ref.split()) + 1 for ref in run.corpus.dev_refs)
    if not pieces:
        raise NMTError("dev_after_tokens: the dev split has no target tokens")
    return {"train_tokens": tokens, "updates": updates, "train_seconds": seconds, "dev_nats": nats,
            "dev_pieces": pieces, "dev_ppl": math.exp(nats / pieces), "dev_nats_per_word": nats / words,
            "dev_words": words}


def _decode(bc: BenchConfig, method: str, quantized: bool) -> dict:
    from nmt.decoding.search import decode_best
    from nmt.decoding.translate import Translator

    translator = Translator.open(bc.checkpoint, "int8" if quantized else "none", device="cpu")
    test = load_split(bc.data, "test")
    src, refs = test["src"], test["tgt"]
    ids = translator.encode(src, 250)
    dc = DecodeConfig(method=method, beam=bc.beam)
    start = time.perf_counter()
    hyps = decode_best(translator.model, ids, dc)
    seconds = time.perf_counter() - start
    texts = translator.tokenizer.decode_tgt(hyps)
    return {"sentences_s": len(src) / seconds, "tokens_s": sum(len(h) + 1 for h in hyps) / seconds,
            "seconds": seconds, "bleu": bleu(texts, refs).score, "peak_rss_mb": peak_rss_mb()}


def _child(queue: mp.Queue, fn_name: str, args: tuple, threads: str) -> None:
    configure_threads(threads)
    try:
        queue.put(("ok", globals()[fn_name](*args)))
    except NMTError as err:
        queue.put(("error", str(err)))
    except Exception as err:  # reported by the parent as one line
        queue.put(("error", f"{type(err).__name__}: {err}"))


def in_fresh_process(fn_name: str, *args, threads: str) -> dict:
    """Run ``fn_name(*args)`` of this module in a new process; returns its result dict."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn_name, args, threads))
    proc.start()
    status, value = queue.get()
    proc.join()
    if status != "ok":
        raise NMTError(f"bench, {fn_name.strip('_')}: {value}")
    return value


def _ceiling_label(name: str, n: int) -> str:
    big = {"large": f"fp32 matmul {n}x{n}x{n}", "large bf16": f"bf16 matmul {n}x{n}x{n}"}
    return big.get(name, f"fp32 matmul {name}")


def _precision_label(res: dict) -> str:
    """'auto (bf16 in use)': the setting and what it resolved to; the bf16 ceiling is measured only when bf16 ran."""
    in_use = "bf16" if "large bf16" in res["ceiling"] else "fp32"
    return f"{res['config']['train']['precision']} ({in_use} in use)"


def table(res: dict) -> str:
    """The figures as a Markdown table."""
    t, c = res["train"], res["ceiling"]
    big, n = c["large"], res["config"]["ceiling_size"]
    rows = [
        ("machine", f"{res['cpu']}, {res['threads']} threads, torch {res['torch']}"),
        ("training precision", _precision_label(res)),
        *((_ceiling_label(name, n), f"{v:.1f} GFLOP/s") for name, v in c.items()),
        ("training target tok/s", f"{t['tgt_tok_s']:,.0f}"),
        ("training source+target tok/s", f"{t['src_tgt_tok_s']:,.0f}"),
        ("seconds per update", f"{t['s_per_update']:.3f} ({t['sentences_per_update']:.0f} sentences, "
                               f"{t['tgt_tokens_per_update']:,.0f} target tokens)"),
        ("padding share (positions without a token)", f"{t['padding_share']:.1%}"),
        ("useful training GFLOP/s", f"{t['useful_gflop_s']:.1f} = {t['useful_gflop_s'] / big:.0%} of the "
                                    f"{n}^3 fp32 matmul ceiling" + (f", {t['useful_gflop_s'] / c['large bf16']:.0%} "
                                    "of the bf16 one" if "large bf16" in c else "")),
        ("training peak RSS", f"{t['peak_rss_mb']:,.0f} MiB"),
    ]
    if "contention" in res:
        rows.extend(contention.rows(res["contention"]))
    if "dev" in res:
        d = res["dev"]
        rows.append(("dev cross-entropy after training",
                     f"{d['train_tokens']:,} target tokens ({d['updates']} updates): perplexity "
                     f"{d['dev_ppl']:.1f} per piece, {d['dev_nats_per_word']:.3f} nats per word"))
    for name, d in res.get("decode", {}).items():
        rows.append((f"decode {name}", f"{d['sentences_s']:.1f} sent/s, {d['tokens_s']:,.0f} tok/s, "
                                       f"BLEU {d['bleu']:.2f}, peak RSS {d['peak_rss_mb']:,.0f} MiB"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(["| figure | value |", "|---|---|", *(f"| {k:<{width}} | {v} |" for k, v in rows)])


def bench(bc: BenchConfig) -> dict:
    """Measure everything, print the table and write the JSON figures to ``bc.output``."""
    if bc.checkpoint and not resolve_path(bc.checkpoint).exists():
        raise NMTError(f"checkpoint not found: {resolve_path(bc.checkpoint)}")
    res = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_name(), "threads": bc.threads,
           "torch": torch.__version__, "config": asdict(bc)}
    print("measuring the matmul ceiling ...", flush=True)
    res["ceiling"] = in_fresh_process("_ceiling", bc, threads=bc.threads)
    print(f"training: {bc.warmup} warm-up + {bc.measure} measured updates ...", flush=True)
    res["train"] = in_fresh_process("_train", bc, threads=bc.threads)
    if bc.contention:
        res["contention"] = contention.measure(bc, in_fresh_process)
    if bc.dev_after_tokens > 0:
        print(f"training a fresh model on {bc.dev_after_tokens:,} target tokens for its dev cross-entropy ...",
              flush=True)
        res["dev"] = in_fresh_process("_dev_after_tokens", bc, threads=bc.threads)
    if bc.checkpoint:
        res["decode"] = {}
        for quantized in (False, True) if bc.quantized else (False,):
            for method in ("greedy", "beam"):
                name = f"{'greedy' if method == 'greedy' else f'beam {bc.beam}'} {'int8' if quantized else 'fp32'}"
                print(f"decoding the test split: {name} ...", flush=True)
                res["decode"][name] = in_fresh_process("_decode", bc, method, quantized, threads=bc.threads)
    out = resolve_path(bc.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(table(res))
    print(f"figures written to {out}")
    return res
