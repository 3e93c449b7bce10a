"""Multilingual models (``data.pairs``, Johnson et al. 2017): the target tag leads every source, pair sampling follows
``data.pair_temperature``, a tiny one-to-many model learns to obey the tag, and bad pairs and targets are refused in
one line."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

import nmt
from nmt import checkpoint
from nmt.cli.main import main
from nmt.config import Config, DataConfig, EvaluateConfig, ModelConfig, TrainConfig
from nmt.data.batching import BatchIterator
from nmt.data.multilingual import PairSampledBatchIterator, epoch_rows, pair_shares
from nmt.data.prepare import prepare
from nmt.data.tokenizer import cache_key
from nmt.decoding.translate import Translator
from nmt.errors import ConfigValueError, NMTError
from nmt.evaluation.evaluate import eval_pairs

XX = "ka lo mi ne ru ta po si vu de".split()
YY = "cat dog sun moon tree river stone bird fish house".split()
ZZ = "un deux trois quatre cinq six sept huit neuf dix".split()


def _write(folder: Path, split: str, n: int, seed: int) -> None:
    """``split.{xx,yy,zz}``: yy and zz are word-for-word translations of xx into two vocabularies."""
    rng = random.Random(seed)
    rows = [[rng.randrange(10) for _ in range(rng.randint(2, 5))] for _ in range(n)]
    for lang, words in (("xx", XX), ("yy", YY), ("zz", ZZ)):
        (folder / f"{split}.{lang}").write_text("".join(" ".join(words[i] for i in r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("multi") / "corpus"
    folder.mkdir()
    for seed, (split, n) in enumerate({"train": 200, "dev": 12, "test": 12}.items()):
        _write(folder, split, n, seed)
    return folder


def _data(corpus: Path, pairs: list[str], **kw) -> DataConfig:
    return replace(DataConfig(), name="multi", format="text", path=str(corpus), src_lang="xx", tgt_lang="mul",
                   pairs=pairs, vocab_size=60, cache_dir=str(corpus.parent / "cache"), **kw)


def test_the_target_tag_is_the_first_source_piece(corpus: Path) -> None:
    c = prepare(_data(corpus, ["xx-yy", "xx-zz"]))
    tags = [c.tokenizer.tag_id("yy"), c.tokenizer.tag_id("zz")]
    assert [c.tokenizer.src.id_to_piece(t) for t in tags] == ["<2yy>", "<2zz>"]
    rows = c.train.select_columns(["src_ids", "pair"])
    assert len(rows) == 400 and all(s[0] == tags[p] and tags[1 - p] not in s for s, p in
                                    zip(rows["src_ids"], rows["pair"], strict=True))
    assert [s[0] for s in c.dev_src[:4]] == [tags[0], tags[1], tags[0], tags[1]]  # dev interleaves the pairs
    assert set(c.dev_refs[0].split()) <= set(YY) and set(c.dev_refs[1].split()) <= set(ZZ)
    # the tag is one piece in every language model: no piece of a sentence holds it
    assert all(c.tokenizer.src.id_to_piece(i) not in ("<2yy>", "<2zz>") for s in c.dev_src for i in s[1:])


def test_a_single_pair_config_keeps_its_sentencepiece_cache_key(corpus: Path) -> None:
    single = replace(DataConfig(), src_lang="xx", tgt_lang="yy")
    texts = (["ka lo"], ["cat dog"])
    assert cache_key(*texts, single) == cache_key(*texts, replace(single, pairs=[]))
    assert cache_key(*texts, single) != cache_key(*texts, replace(single, pairs=["xx-yy"]))


def test_pair_shares_follow_the_temperature() -> None:
    sizes = [400, 100, 25]
    assert np.allclose(pair_shares(sizes, 1.0), np.array(sizes) / 525)
    sqrt = np.sqrt(sizes)
    assert np.allclose(pair_shares(sizes, 2.0), sqrt / sqrt.sum())
    assert np.allclose(pair_shares(sizes, 1000.0), 1 / 3, atol=2e-3)  # large T: balanced


def _toy_train(sizes: list[int]) -> datasets.Dataset:
    """A prepared training set of unequal pairs: lengths, ids and the pair column, as nmt.data.prepare makes it."""
    rng = random.Random(0)
    pair = [p for p, n in enumerate(sizes) for _ in range(n)]
    src = [[4 + p] * rng.randint(1, 6) for p in pair]
    return datasets.Dataset.from_dict({"src_ids": src, "tgt_ids": src, "src_len": [len(s) for s in src],
                                       "tgt_len": [len(s) for s in src], "pair": pair})


@pytest.mark.parametrize("temperature", [1.0, 2.0, 5.0, 1000.0])
def test_an_epochs_pairs_follow_the_temperature(temperature: float) -> None:
    sizes = [400, 100, 25]
    it = PairSampledBatchIterator.over(_toy_train(sizes), temperature, 60, seed=3)
    batches = it.epoch(0)
    drawn = np.bincount(it.pair[[i for b in batches for i in b]], minlength=3)
    assert np.abs(drawn - pair_shares(sizes, temperature) * 525).max() <= 1  # each pair's share, to rounding
    assert drawn.sum() in range(524, 527)
    if temperature == 1.0:  # proportional: every row exactly once, as without sampling
        assert sorted(i for b in batches for i in b) == list(range(525))
    assert it.epoch(0) == batches and it.epoch(1) != batches  # seeded: the same epoch, the same rows
    small = [i for b in batches for i in b if it.pair[i] == 0]
    assert len(set(small)) == len(small)  # an undersampled pair repeats no row within an epoch


def test_epoch_rows_oversample_a_small_pair_in_full_rounds() -> None:
    pair = np.array([0] * 90 + [1] * 10)
    rows = epoch_rows(pair, 1000.0, seed=0, epoch=0)
    small = np.bincount(rows[pair[rows] == 1], minlength=100)[90:]
    assert small.min() >= 5 and small.max() <= 6  # 50 draws of 10 rows: each 5 times (rounding: one more)


@pytest.fixture(scope="module")
def one_to_many(corpus: Path) -> Path:
    """A tiny xx -> yy, zz model, trained for 150 updates."""
    from nmt.training.train import train

    run = corpus.parent / "run"
    model = replace(ModelConfig(), emb_dim=24, hidden_dim=48, maxout_dim=24, dropout=0.0)
    tc = replace(TrainConfig(), max_steps=150, eval_every=150, batch_tokens=600, lr=1e-2, tensorboard=False,
                 keep_last=0, threads="1")
    train(Config(data=_data(corpus, ["xx-yy", "xx-zz"]), model=model, train=tc, name="multi", run_dir=str(run)))
    return run


def test_a_one_to_many_model_learns_to_obey_the_tag(one_to_many: Path) -> None:
    m = nmt.load(one_to_many, device="cpu")
    assert m.pairs == ["xx-yy", "xx-zz"] and m.source_lang == "xx" and m.target_lang == "mul"
    src = [" ".join(XX[i] for i in (0, 1, 2)), " ".join(XX[i] for i in (3, 4))]
    yy, zz = [" ".join(YY[i] for i in (0, 1, 2)), " ".join(YY[i] for i in (3, 4))], \
        [" ".join(ZZ[i] for i in (0, 1, 2)), " ".join(ZZ[i] for i in (3, 4))]
    right = sum(m.score(src, yy, target="yy")) + sum(m.score(src, zz, target="zz"))
    wrong = sum(m.score(src, yy, target="zz")) + sum(m.score(src, zz, target="yy"))
    assert right > wrong + 30  # log p with the right tag far above the wrong one: the tag was learned
    out_yy, out_zz = m.translate(src, target="yy"), m.translate(src, target="zz")
    assert out_yy != out_zz
    words_yy, words_zz = " ".join(out_yy).split(), " ".join(out_zz).split()
    assert sum(w in YY for w in words_yy) > len(words_yy) / 2 and sum(w in ZZ for w in words_zz) > len(words_zz) / 2


def test_translate_and_evaluate_take_the_target(one_to_many: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "in.xx").write_text("ka lo mi\n\nne ru\n", encoding="utf-8")
    main(["translate", f"checkpoint={one_to_many}", f"input={tmp_path / 'in.xx'}", f"output={tmp_path / 'out'}",
          "tgt_lang=zz", "threads=1"])
    out = (tmp_path / "out").read_text(encoding="utf-8").split("\n")
    assert len(out) == 4 and out[1] == "" and out[0]
    main(["evaluate", f"checkpoint={one_to_many}", "pair=xx-zz", f"out_dir={tmp_path / 'eval'}", "threads=1"])
    assert "test.xx-zz: BLEU" in capsys.readouterr().out
    assert (tmp_path / "eval" / "test.xx-zz.greedy.hyp").is_file()
    assert not (tmp_path / "eval" / "test.xx-yy.greedy.hyp").exists()


def test_an_unknown_or_missing_target_is_refused_naming_the_pairs(one_to_many: Path) -> None:
    t = Translator.open(one_to_many, device="cpu")
    with pytest.raises(NMTError, match=r"cannot translate into 'fr': it has pairs xx-yy,xx-zz$"):
        t.source_tag("fr")
    with pytest.raises(NMTError, match=r"translates into yy, zz \(pairs xx-yy,xx-zz\): choose the target"):
        nmt.load(one_to_many, device="cpu").translate("ka lo")
    with pytest.raises(NMTError, match="pair=xx-fr: the model does not translate it; it has xx-yy,xx-zz"):
        eval_pairs(EvaluateConfig(checkpoint="x", pair="xx-fr"), t.config.data)


def test_a_single_pair_model_needs_no_target_and_refuses_another(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    from nmt.training.train import train

    model = replace(ModelConfig(), emb_dim=8, hidden_dim=12, maxout_dim=6)
    tc = replace(TrainConfig(), max_steps=2, eval_every=2, batch_tokens=400, tensorboard=False, keep_last=0)
    train(Config(data=tiny_data_cfg, model=model, train=tc, name="one", run_dir=str(tmp_path / "run")))
    t = Translator.open(tmp_path / "run", device="cpu")
    assert t.source_tag(None) is None and t.source_tag("yy") is None  # no tag: the ids of before
    assert t.encode(["ka lo"], 250) == t.tokenizer.encode_src(["ka lo"])
    with pytest.raises(NMTError, match="cannot translate into 'zz': it has pair xx-yy"):
        t.source_tag("zz")
    ckpt = checkpoint.load(tmp_path / "run" / "last.pt")
    with pytest.raises(NMTError, match=r"data.pairs: checkpoint \[\] vs requested \['xx-yy'\]"):
        checkpoint.check_compatible(ckpt.payload, ckpt.config.model, replace(ckpt.config.data, pairs=["xx-yy"]))


@pytest.mark.parametrize(("kw", "message"), [
    ({"pairs": ["de_en"]}, "data.pairs=de_en is not a language pair: write SRC-TGT"),
    ({"pairs": ["de-de"]}, "data.pairs=de-de is not a language pair"),
    ({"pairs": ["de-en", "de-en"]}, "data.pairs names de-en more than once"),
    ({"pairs": ["en-de", "en-fr"], "src_lang": "de"}, r"data.src_lang=de conflicts with data.pairs=\[en-de,en-fr\] "
                                                      r"\(its sources: en\): set data.src_lang=en"),
    ({"pairs": ["de-en", "fr-en"], "tgt_lang": "fr"}, "data.tgt_lang=fr conflicts with data.pairs"),
    ({"pair_temperature": 2.0}, "data.pair_temperature samples among data.pairs: give data.pairs too"),
    ({"pairs": ["de-en"], "pair_temperature": -1.0}, "data.pair_temperature=-1.0 is out of range: must be > 0"),
    ({"pairs": ["de-en"], "joint_vocab": False}, "data.pairs needs data.joint_vocab=true"),
    ({"pairs": ["de-en"], "spm_alpha": 0.1}, "data.spm_alpha .* is not supported with data.pairs yet"),
])
def test_bad_pairs_are_refused_in_one_line(kw: dict, message: str) -> None:
    with pytest.raises(ConfigValueError, match=message) as err:
        replace(DataConfig(), **{"src_lang": "de", "tgt_lang": "en", **kw})
    assert "\n" not in str(err.value)


def test_pairs_set_the_sides_languages() -> None:
    many = replace(DataConfig(), src_lang="de", tgt_lang="en", pairs=["de-en", "fr-en", "cs-en"])
    assert (many.src_lang, many.tgt_lang) == ("mul", "en")
    one = replace(DataConfig(), src_lang="mul", tgt_lang="mul", pairs=["en-de", "en-fr"])
    assert (one.src_lang, one.tgt_lang) == ("en", "mul")


def test_batches_over_a_single_pair_are_unchanged(tiny_data_cfg: DataConfig) -> None:
    c = prepare(tiny_data_cfg)
    assert "pair" not in c.train.column_names
    it = BatchIterator.from_dataset(c.train, 200, shuffle=True, seed=1)
    assert sorted(i for b in it.epoch(0) for i in b) == list(range(len(c.train)))
    assert torch.equal(it.make([0]).src[0, : len(c.train_src[0])], torch.tensor(c.train_src[0]))
