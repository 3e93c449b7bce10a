"""``make bench-phrases``: ``nmt score phrase_table=`` on a synthetic Moses phrase table of N entries (default
1,000,000), whose phrase pairs are spans cut from a corpus's sentence pairs (1-7 words, the target span at the same
relative place), with Moses's 5 fields. Scores it with a given checkpoint, or with a freshly initialised tiny model
(its sentencepiece vocabulary trained on the corpus: the speed of scoring, not its quality), and prints entries/s
and the peak resident memory after the first chunk and at the end: one chunk is held, so the two stay close.

    python -m nmt.bench.phrase_table [--entries 1000000] [--checkpoint RUN] [--reverse RUN] [--gz]
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import random
import re
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path

from nmt import checkpoint
from nmt.config import Config, DataConfig, ModelConfig
from nmt.data.load import find_text_file, read_lines, resolve_path
from nmt.data.tokenizer import train_or_load
from nmt.decoding.translate import Translator
from nmt.evaluation.phrase_table import CHUNK_LINES, score_table
from nmt.model import build_model
from nmt.runtime.process import Runtime
from nmt.runtime.threads import Threads

MAX_PHRASE = 7  # words in a phrase, as Moses's default -max-phrase-length
PUNCTUATION = re.compile(r"([.,;:!?¿¡()\"])")


def tokenize(text: str) -> str:
    """Punctuation split off the words, roughly as Moses's tokenizer.perl does it."""
    return " ".join(PUNCTUATION.sub(r" \1 ", text).split())


def corpus_pairs(folder: str, src_lang: str, tgt_lang: str, limit: int = 20_000) -> list[tuple[str, str]]:
    """Up to ``limit`` non-empty sentence pairs of ``folder``'s train split (``train.{lang}``, plain or .gz),
    tokenized (:func:`tokenize`)."""
    where = resolve_path(folder)
    lines = zip(read_lines(find_text_file(where, f"train.{src_lang}")),
                read_lines(find_text_file(where, f"train.{tgt_lang}")), strict=True)
    pairs = ((tokenize(s), tokenize(t)) for s, t in lines)
    return list(itertools.islice(((s, t) for s, t in pairs if s and t), limit))


def phrase_pair(src: list[str], tgt: list[str], rng: random.Random) -> tuple[str, str]:
    """A span of the source words and the target span at about the same relative place, each 1-7 words."""
    n = rng.randint(1, min(MAX_PHRASE, len(src)))
    i = rng.randrange(len(src) - n + 1)
    m = max(1, min(MAX_PHRASE, len(tgt), round(n * len(tgt) / len(src)) + rng.randint(-1, 1)))
    j = min(len(tgt) - m, round(i * len(tgt) / len(src)))
    return " ".join(src[i: i + n]), " ".join(tgt[j: j + m])


def write_table(path: Path, pairs: list[tuple[str, str]], entries: int, seed: int = 0) -> None:
    """``entries`` lines ``src ||| tgt ||| 4 scores ||| alignment ||| counts``, written as they are made."""
    rng = random.Random(seed)
    words = [(s.split(), t.split()) for s, t in pairs]
    with (gzip.open(path, "wt", encoding="utf-8", compresslevel=1) if path.suffix == ".gz"
          else open(path, "w", encoding="utf-8")) as f:
        for _ in range(entries):
            src, tgt = phrase_pair(*words[rng.randrange(len(words))], rng)
            scores = " ".join(f"{rng.random():.6g}" for _ in range(4))
            align = " ".join(f"{k}-{k}" for k in range(min(src.count(" "), tgt.count(" ")) + 1))
            f.write(f"{src} ||| {tgt} ||| {scores} ||| {align} ||| {rng.randint(1, 9)} {rng.randint(1, 9)} 1\n")


def fresh_checkpoint(pairs: list[tuple[str, str]], path: Path, cache: Path, *, vocab_size: int = 1000,
                     emb_dim: int = 64, hidden_dim: int = 128, seed: int = 0) -> Path:
    """A checkpoint of an untrained Cho 2014 model of the given sizes, with a sentencepiece vocabulary trained on
    ``pairs`` (cached in ``cache``): what ``nmt score`` loads, for speed and memory measurements and tests."""
    import torch

    data = replace(DataConfig(), vocab_size=vocab_size, cache_dir=str(cache))
    tokenizer = train_or_load([s for s, _ in pairs], [t for _, t in pairs], data)
    model_cfg = replace(ModelConfig(), emb_dim=emb_dim, hidden_dim=hidden_dim, maxout_dim=emb_dim, init="torch")
    torch.manual_seed(seed)
    model = build_model(model_cfg, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)
    cfg = replace(Config(), data=data, model=model_cfg)
    checkpoint.save(checkpoint.weights_payload(model, cfg, tokenizer, 0), path)
    return path


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(args: argparse.Namespace, table: Path, models: list[Translator], threads: Threads) -> dict:
    """Score ``table`` once; entries/s and the peak RSS before scoring, after the first chunk and at the end."""
    peaks: list[float] = []
    before = peak_rss_mib()
    start = time.perf_counter()
    out = table.with_name(f"scored{''.join(table.suffixes)}")
    entries, _ = score_table(models, table, out, batch_tokens=args.batch_tokens, chunk_lines=args.chunk_lines,
                             threads=threads, on_chunk=lambda n: peaks.append(peak_rss_mib()))
    seconds = time.perf_counter() - start
    return {"entries": entries, "seconds": round(seconds, 2), "entries_per_s": round(entries / seconds),
            "chunks": len(peaks), "chunk_lines": args.chunk_lines, "models": len(models),
            "peak_rss_mib_before_scoring": round(before), "peak_rss_mib_after_first_chunk": round(peaks[0]),
            "peak_rss_mib_at_end": round(peaks[-1]), "table_mib": round(table.stat().st_size / 2**20, 1),
            "threads": threads.current, "device": str(models[0].device)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--entries", type=int, default=1_000_000, help="phrase pairs in the synthetic table")
    p.add_argument("--checkpoint", help="a trained run or checkpoint (default: a fresh tiny model)")
    p.add_argument("--reverse", help="a checkpoint trained the other way, for the p(src|tgt) column")
    p.add_argument("--corpus", default="embedded:bible-es-en", help="folder with train.{src,tgt} (.gz too)")
    p.add_argument("--src-lang", default="es")
    p.add_argument("--tgt-lang", default="en")
    p.add_argument("--gz", action="store_true", help="write (and read) the table gzip-compressed")
    p.add_argument("--vocab-size", type=int, default=1000, help="sentencepiece pieces of the fresh model")
    p.add_argument("--batch-tokens", type=int, default=4096)
    p.add_argument("--chunk-lines", type=int, default=CHUNK_LINES)
    p.add_argument("--threads", default="auto", help="auto | N | 0, as nmt score's threads=")
    p.add_argument("--device", default="auto")
    p.add_argument("--out-dir", default="runs/bench/phrase-table", help="the table, the model and bench.json")
    args = p.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = corpus_pairs(args.corpus, args.src_lang, args.tgt_lang)
    table = out / ("table.gz" if args.gz else "table")
    write_table(table, pairs, args.entries)
    ckpt = args.checkpoint or str(fresh_checkpoint(pairs, out / "fresh.pt", out / "cache", vocab_size=args.vocab_size))
    threads = Runtime.install(args.threads, tune_memory=False, signals=False).threads
    models = [Translator.open(c, device=args.device) for c in (ckpt, args.reverse) if c]
    result = {"checkpoint": ckpt, **measure(args, table, models, threads)}
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"{result['entries']:,} entries in {result['seconds']} s: {result['entries_per_s']:,} entries/s; peak RSS "
          f"{result['peak_rss_mib_after_first_chunk']} MiB after the first chunk, {result['peak_rss_mib_at_end']} MiB "
          "at the end", file=sys.stderr)


if __name__ == "__main__":
    main()
