"""Tests for :mod:`nmt.data.tokenizer`: sentencepiece training, special ids, round trips and the cache."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import sentencepiece as spm

from nmt.config import DataConfig
from nmt.data import tokenizer as tokenizer_mod
from nmt.data.tokenizer import BOS, EOS, PAD, UNK, Tokenizer, cache_key, train_or_load
from nmt.errors import NMTError

VOCAB = 70


def _sentences(letters: str, seed: int, n: int = 200) -> list[str]:
    """``n`` sentences of 2–7 made-up words spelled with ``letters`` only."""
    rng = random.Random(seed)
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 5))) for _ in range(30)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(2, 7))) for _ in range(n)]


# Disjoint alphabets: a source-only model cannot spell target words, a joint one can.
SRC = _sentences("abcdefghijklm", seed=0)
TGT = _sentences("nopqrstuvwxyz", seed=1)


def _cfg(tmp_path: Path, **kw) -> DataConfig:
    return replace(DataConfig(), **{"vocab_size": VOCAB, "cache_dir": str(tmp_path / "nmt-cache"), **kw})


@pytest.fixture(scope="module")
def joint(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    return train_or_load(SRC, TGT, _cfg(tmp_path_factory.mktemp("joint")))


@pytest.fixture(scope="module")
def separate(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    return train_or_load(SRC, TGT, _cfg(tmp_path_factory.mktemp("separate"), joint_vocab=False))


@pytest.fixture(params=["joint", "separate"])
def tok(request: pytest.FixtureRequest) -> Tokenizer:
    return request.getfixturevalue(request.param)


def test_special_ids(tok: Tokenizer) -> None:
    assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    for sp in (tok.src, tok.tgt):
        assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (PAD, UNK, BOS, EOS)
        assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]


def test_round_trip_of_training_sentences(tok: Tokenizer) -> None:
    ids = tok.encode_tgt(TGT[:50])
    assert tok.decode_tgt(ids) == TGT[:50]
    # No specials in encoded text: batching adds BOS/EOS, and every character was seen in training.
    assert all(i > EOS for row in ids + tok.encode_src(SRC[:50]) for i in row)
    assert tok.src.decode(tok.encode_src(SRC[:50])) == SRC[:50]


def test_round_trip_of_unseen_word_combinations(tok: Tokenizer) -> None:
    words = sorted({w for s in TGT for w in s.split()})
    text = [" ".join(reversed(words[:9])), words[-1]]
    assert tok.decode_tgt(tok.encode_tgt(text)) == text


def test_vocab_sizes(joint: Tokenizer, separate: Tokenizer) -> None:
    assert joint.src_vocab_size == joint.tgt_vocab_size == VOCAB
    assert separate.src_vocab_size == separate.tgt_vocab_size == VOCAB


def test_joint_vocab_shares_one_model(joint: Tokenizer) -> None:
    assert joint.src_model == joint.tgt_model
    assert joint.src is joint.tgt
    assert joint.encode_src(TGT[:3]) == joint.encode_tgt(TGT[:3])


def test_separate_vocabs_cover_their_own_side_only(separate: Tokenizer) -> None:
    assert separate.src_model != separate.tgt_model
    assert UNK in separate.encode_src([TGT[0]])[0]  # target letters are unknown to the source model
    assert UNK in separate.encode_tgt([SRC[0]])[0]
    assert UNK not in separate.encode_src([SRC[0]])[0]


def test_save_and_reload_give_same_encodings(joint: Tokenizer, tmp_path: Path) -> None:
    joint.save(tmp_path / "run")
    again = Tokenizer((tmp_path / "run" / "src.model").read_bytes(), (tmp_path / "run" / "tgt.model").read_bytes())
    assert again.encode_tgt(TGT[:10]) == joint.encode_tgt(TGT[:10])


def test_second_call_reuses_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path, joint_vocab=False)
    first = train_or_load(SRC, TGT, cfg)
    folder = Path(cfg.cache_dir) / "spm" / cache_key(SRC, TGT, cfg)
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert set(mtimes) == {"src.model", "tgt.model"}  # and no temporary files left behind

    def no_training(*args, **kwargs):
        raise AssertionError("sentencepiece retrained although the cache holds the model")

    monkeypatch.setattr(tokenizer_mod, "_train_one", no_training)
    second = train_or_load(list(SRC), list(TGT), cfg)
    assert (second.src_model, second.tgt_model) == (first.src_model, first.tgt_model)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes


def test_cache_key_depends_on_text_and_settings(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    key = cache_key(SRC, TGT, cfg)
    assert cache_key(SRC, TGT, cfg) == key
    assert cache_key(SRC[:-1], TGT, cfg) != key
    assert cache_key(TGT, SRC, cfg) != key  # sides are not interchangeable
    assert cache_key(["ab", "c"], [], cfg) != cache_key(["a", "bc"], [], cfg)
    for change in ({"vocab_size": VOCAB + 1}, {"joint_vocab": False}, {"spm_model_type": "unigram"}):
        assert cache_key(SRC, TGT, replace(cfg, **change)) != key


def test_vocab_too_large_is_an_nmt_error(tmp_path: Path) -> None:
    with pytest.raises(NMTError, match="vocab_size"):
        train_or_load(SRC[:20], TGT[:20], _cfg(tmp_path, vocab_size=5000))


def test_model_with_other_special_ids_is_rejected() -> None:
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(SRC), model_writer=buf, vocab_size=40,
                                   minloglevel=2)  # sentencepiece defaults: unk=0, bos=1, eos=2, no pad
    with pytest.raises(NMTError, match="special ids"):
        Tokenizer(buf.getvalue())



def test_sample_is_uniform_ordered_and_fixed() -> None:
    texts = [f"s{i}" for i in range(1000)]
    picked = list(tokenizer_mod.sample(texts, 1000, 100))
    assert len(picked) == 100 == len(set(picked))
    assert picked == sorted(picked, key=lambda t: int(t[1:]))  # corpus order
    assert picked == list(tokenizer_mod.sample(iter(texts), 1000, 100))  # the same every time
    assert picked != list(tokenizer_mod.sample(texts, 1000, 100, seed=2))
    assert 300 < sum(int(t[1:]) for t in picked) / 100 < 700  # spread over the corpus, not its start
    assert list(tokenizer_mod.sample(texts, 1000, 1000)) == texts == list(tokenizer_mod.sample(texts, 1000, 0))


SAMPLED_MODEL = """
import hashlib, random, sys
from dataclasses import replace
from nmt.config import DataConfig
from nmt.data.tokenizer import _train_one
rng = random.Random(0)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(3000)]
sents = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for _ in range(5000)]
cfg = replace(DataConfig(), spm_input_sentence_size=300)
print(hashlib.sha256(_train_one(sents, len(sents), cfg, 600)).hexdigest())
"""


def test_model_from_a_sample_is_the_same_in_every_process() -> None:
    """sentencepiece's own sampling differs between processes; nmt samples itself, so the model does not."""
    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)}
    runs = [subprocess.run([sys.executable, "-c", SAMPLED_MODEL], env=env, capture_output=True, text=True,
                           timeout=120) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
