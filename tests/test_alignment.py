"""Word alignments from attention (nmt.decoding.alignment, ``decode.alignment``): pieces of one word map to one
index, rows of the word matrix still sum to 1, a model trained on a word-for-word task aligns on the diagonal,
and ``nmt translate`` writes Moses pairs after the translation or refuses a model without attention."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from test_cli import nmt, train_args

from nmt.config import ModelConfig
from nmt.data.batching import BatchIterator, collate
from nmt.data.tokenizer import EOS
from nmt.decoding import alignment
from nmt.model import build_model

V = 14  # ids 0-3 are PAD UNK BOS EOS; symbols 4..13


def test_pieces_of_one_word_map_to_one_index() -> None:
    pieces = ["\u2581Ein", "\u2581Bo", "ston", "\u2581Ter", "ri", "er", "."]
    assert alignment.word_of_piece(pieces) == [0, 1, 1, 2, 2, 2, 2]
    assert alignment.word_of_piece(["ston", "\u2581x"]) == [0, 1]  # a first piece without the mark starts a word


def test_word_matrix_merges_pieces_and_keeps_rows_summing_to_one() -> None:
    src = ["\u2581a", "\u2581b", "c"]  # words: a | bc
    tgt = ["\u2581x", "y", "\u2581z"]  # words: xy | z
    weights = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.4, 0.4]])
    m = alignment.word_matrix(weights, src, tgt)
    torch.testing.assert_close(m, torch.tensor([[0.4, 0.6], [0.2, 0.8]]))
    torch.testing.assert_close(m.sum(1), torch.ones(2))
    assert alignment.hard(m) == [(1, 0), (1, 1)] and alignment.moses(alignment.hard(m)) == "1-0 1-1"
    assert alignment.soft(m) == "0.400,0.600 0.200,0.800"


def test_a_word_for_word_model_aligns_on_the_diagonal() -> None:
    """RNNsearch trained to copy sequences of symbols: target positions attend most to their own source position.
    Not every one: the bidirectional annotations of a neighbour also carry a symbol, so some weight lands there
    (about 0.8 to 0.85 of the positions on the diagonal after 400 updates, against 1/6 by chance)."""
    rng, _ = random.Random(0), torch.manual_seed(0)
    seqs = [[rng.randrange(EOS + 1, V) for _ in range(rng.randint(3, 7))] for _ in range(30_000)]
    batches = BatchIterator(seqs, seqs, 600, shuffle=True, seed=0)
    model = build_model(replace(ModelConfig(), arch="rnnsearch", emb_dim=24, hidden_dim=64, attention_dim=32,
                                maxout_dim=32, dropout=0.0, init="torch"), V, V)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for idx in [*batches.epoch(0), *batches.epoch(1)][:400]:
        b = batches.make(idx)
        loss = model.loss(b) / b.n_tgt_tokens
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    test = [[rng.randrange(EOS + 1, V) for _ in range(6)] for _ in range(50)]
    with torch.no_grad():
        weights = model.attention_and_features(collate(test, test, range(50)))[1][:, :6]  # (50, 6, 6), no EOS row
    heaviest = weights.argmax(-1)  # (50, 6) the source position each target position attends most to
    on_diagonal = (heaviest == torch.arange(6)).float().mean()
    next_one = (heaviest == torch.arange(6) + 1).float().mean()
    assert on_diagonal >= 0.75 and on_diagonal > 4 * next_one, (on_diagonal, next_one)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, corpus_writer: Callable[..., Path]) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("align")
    corpus_writer(tmp / "corpus")
    out = {}
    for arch in ("rnnsearch", "cho2014"):
        proc = nmt(*train_args(tmp / "corpus", tmp / arch, tmp / "cache", "train.max_steps=10",
                               "train.eval_every=10", f"model.arch={arch}", "model.attention_dim=8"), cwd=tmp)
        assert proc.returncode == 0, proc.stderr
        out[arch] = tmp / arch
    return out


def test_translate_writes_word_pairs_after_the_translation(runs: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "in.xx"
    src.write_text("ka lo mi\n\nne ru\n", encoding="utf-8")
    for mode in ("hard", "soft"):
        proc = nmt("translate", f"checkpoint={runs['rnnsearch']}", f"input={src}", f"decode.alignment={mode}",
                   "threads=1", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert len(lines) == 3 and lines[1] == " ||| "
        for source, line in zip(["ka lo mi", "", "ne ru"], lines, strict=True):
            text, _, aligned = line.partition(" ||| ")
            if mode == "hard" and aligned:
                pairs = [tuple(map(int, p.split("-"))) for p in aligned.split()]
                assert [j for _, j in pairs] == list(range(len(text.split())))  # every target word, in order
                assert all(0 <= i < len(source.split()) for i, _ in pairs)
            elif aligned:
                rows = [[float(w) for w in row.split(",")] for row in aligned.split()]
                assert len(rows) == len(text.split()) and all(abs(sum(r) - 1) < 0.01 for r in rows)


def test_the_api_gives_words_pairs_and_weights(runs: dict[str, Path]) -> None:
    import nmt as api

    first, empty = api.load(runs["rnnsearch"]).align(["ka lo mi", ""], beam=3)
    assert first.source_words == ["ka", "lo", "mi"] and len(first.target_words) == len(first.text.split())
    assert [j for _, j in first.pairs] == list(range(len(first.target_words)))
    assert all(abs(sum(row) - 1) < 1e-4 and len(row) == 3 for row in first.weights)
    assert (empty.text, empty.pairs) == ("", [])


def test_a_model_without_attention_is_refused_in_one_line(runs: dict[str, Path], tmp_path: Path) -> None:
    src, out = tmp_path / "in.xx", tmp_path / "out.yy"
    src.write_text("ka lo mi\n", encoding="utf-8")
    proc = nmt("translate", f"checkpoint={runs['cho2014']}", f"input={src}", f"output={out}", "decode.alignment=hard",
               cwd=tmp_path)
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.strip().splitlines() == [
        "nmt translate: error: decode.alignment needs a model with attention (arch=rnnsearch); this one is "
        "arch=cho2014"]
