"""Target prefixes (a forced start per sentence, for interactive translation): the output begins with the prefix
and continues it, in greedy and beam search; sentences without one decode exactly as before; ``nmt translate
prefix=FILE`` takes one line per input line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import random_batch, tiny_model
from test_alignment import runs  # noqa: F401  (the module's trained runs)
from test_cli import nmt

from nmt.config import DecodeConfig
from nmt.data.batching import collate
from nmt.decoding.search import beam_search, decode_all, greedy, max_lengths
from nmt.errors import NMTError


def _setup():
    model, b = tiny_model(seed=6), random_batch()
    ids = [b.src[i, : b.src_len[i]].tolist() for i in range(b.src.shape[0])]
    return model, b, ids, max_lengths(b.src_len, 1.5, 3)


def test_outputs_start_with_their_prefix_and_others_are_unchanged() -> None:
    model, b, ids, caps = _setup()
    prefixes = [[7, 8], [], [9], [10, 11, 12]]
    plain_g = [h.tokens for h in greedy(model, b.src, b.src_len, caps)]
    forced_g = [h.tokens for h in greedy(model, b.src, b.src_len, caps, prefixes=prefixes)]
    plain_b = beam_search(model, b.src, b.src_len, caps, beam=3, n_best=2)
    forced_b = beam_search(model, b.src, b.src_len, caps, beam=3, n_best=2, prefixes=prefixes)
    for i, p in enumerate(prefixes):
        assert forced_g[i][: len(p)] == p and all(h.tokens[: len(p)] == p for h in forced_b[i])
        if not p:
            assert forced_g[i] == plain_g[i] and [h.tokens for h in forced_b[i]] == [h.tokens for h in plain_b[i]]


@torch.no_grad()
def test_a_forced_hypothesis_scores_as_the_model_scores_it() -> None:
    model, b, ids, caps = _setup()
    hyps = beam_search(model, b.src, b.src_len, caps, beam=3, n_best=3, alpha=0.0, prefixes=[[7, 8]] * 4)
    for i, sentence in enumerate(hyps):
        for h in sentence:
            if len(h.tokens) + 1 < int(caps[i]):  # ended by EOS, so its log-probability counts the EOS
                assert h.logprob == pytest.approx(float(model.score(collate([ids[i]], [h.tokens], [0]))[0]),
                                                  abs=1e-4)


def test_greedy_continues_as_if_it_had_chosen_the_prefix() -> None:
    model, b, ids, caps = _setup()
    best = [h.tokens for h in greedy(model, b.src, b.src_len, caps)]
    prefixes = [t[:2] for t in best]  # the model's own start: forcing it changes nothing
    assert [h.tokens for h in greedy(model, b.src, b.src_len, caps, prefixes=prefixes)] == best


def test_a_prefix_longer_than_the_cap_is_kept_whole_and_sampling_refuses_one() -> None:
    model, b, ids, caps = _setup()
    long = [list(range(4, 18))] * 4
    out = decode_all(model, ids, DecodeConfig(max_len_ratio=0.1, max_len_extra=1), prefixes=long)
    assert all(h[0].tokens[:14] == long[0] for h in out)
    with pytest.raises(NMTError, match="greedy and beam search"):
        decode_all(model, ids, DecodeConfig(method="sample"), prefixes=long)


def test_translate_takes_a_prefix_file(runs: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    src, pre = tmp_path / "in.xx", tmp_path / "pre.yy"
    src.write_text("ka lo mi\nne ru\n\n", encoding="utf-8")
    pre.write_text("river stone\n\n\n", encoding="utf-8")
    proc = nmt("translate", f"checkpoint={runs['rnnsearch']}", f"input={src}", f"prefix={pre}", "threads=1",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("river stone") and len(lines) == 3 and lines[2] == ""
    pre.write_text("river\n", encoding="utf-8")
    proc = nmt("translate", f"checkpoint={runs['rnnsearch']}", f"input={src}", f"prefix={pre}", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "pre.yy" in proc.stderr
