"""A corpus of 2 million pairs goes through the whole data pipeline in bounded memory (slow: minutes).

A child process loads the text files into Arrow, trains sentencepiece on a sample, tokenizes, filters, and
makes every batch of one training epoch; it reports its own peak resident memory (``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
N_PAIRS = 2_000_000
LIMIT_MB = 2048

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from dataclasses import replace
    from nmt.config import DataConfig
    from nmt.data.batching import BatchIterator
    from nmt.data.prepare import prepare

    corpus_dir, cache = sys.argv[1], sys.argv[2]
    cfg = replace(DataConfig(), name="big", format="text", path=corpus_dir, src_lang="xx", tgt_lang="yy",
                  vocab_size=1000, spm_input_sentence_size=200_000, cache_dir=cache)
    t0 = time.monotonic()
    corpus = prepare(cfg)
    t1 = time.monotonic()
    it = BatchIterator.from_dataset(corpus.train, 4096, shuffle=True, seed=1)
    batches = it.epoch(0)
    tokens = sum(it.make(b).n_tgt_tokens for b in batches)
    t2 = time.monotonic()
    print(json.dumps({"pairs": len(corpus.train), "batches": len(batches), "tgt_tokens": tokens,
                      "prepare_s": round(t1 - t0, 1), "epoch_s": round(t2 - t1, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
""")


def write_big_corpus(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` synthetic pairs of 3-12 words from 2 x 600 made-up words (word-for-word translations), streamed
    to ``train.{xx,yy}``, and 100 pairs each of dev and test."""
    rng = random.Random(seed)
    syll = "ka lo mi ne ru ta po si vu de ba go".split()
    src_words = sorted({a + b + c for a in syll for b in syll for c in syll})[:600]
    tgt_words = [w[::-1] + "x" for w in src_words]
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n), ("dev", 100), ("test", 100)):
        with open(folder / f"{split}.xx", "w") as fs, open(folder / f"{split}.yy", "w") as ft:
            for _ in range(count):
                idx = [rng.randrange(600) for _ in range(rng.randint(3, 12))]
                fs.write(" ".join(src_words[i] for i in idx) + "\n")
                ft.write(" ".join(tgt_words[i] for i in idx) + "\n")


@pytest.mark.slow
def test_two_million_pairs_stay_under_2_gb(tmp_path: Path) -> None:
    start = time.monotonic()
    write_big_corpus(tmp_path / "corpus", N_PAIRS)
    written = time.monotonic()
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "corpus"), str(tmp_path / "nmt-cache")],
                         env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    report["write_s"] = round(written - start, 1)
    report["total_s"] = round(time.monotonic() - start, 1)
    print("\n2M-pair data pipeline:", json.dumps(report))
    assert report["pairs"] == N_PAIRS  # 3-12 words never exceed max_len=100 pieces: nothing filtered
    assert report["tgt_tokens"] >= N_PAIRS * 4  # every pair was batched (at least 3 words + EOS each)
    assert report["peak_rss_mb"] < LIMIT_MB, report
