"""Subword regularisation (``data.spm_alpha``, nmt.data.subword_sampling and nmt.data.sampled_batches): off, the
pieces of today; on, training pieces sampled anew each epoch, the same for the same (seed, epoch) in any process and
across a resume, decoding to the same text; dev never sampled."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from nmt import checkpoint
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.data.batching import BatchIterator
from nmt.data.prepare import Corpus, prepare
from nmt.data.sampled_batches import SampledBatchIterator, training_batches
from nmt.data.subword_sampling import BpeDropout, NBestSampling, sample_all, segmenter
from nmt.errors import ConfigValueError, NMTError
from nmt.training.run import setup
from nmt.training.train import fit, train

TC = TrainConfig(batch_tokens=400, seed=7)


@pytest.fixture
def sampled_cfg(tiny_data_cfg: DataConfig) -> DataConfig:
    return replace(tiny_data_cfg, spm_alpha=0.3)


def _texts(corpus: Corpus) -> list[str]:
    return list(corpus.train["src"]) + list(corpus.train["tgt"])


def _pieces(it: BatchIterator, epoch: int) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """An epoch's batches and its pieces on both sides."""
    batches = it.epoch(epoch)
    return batches, [list(x) for x in it.src], [list(x) for x in it.tgt]


def test_alpha_0_keeps_the_pieces_encoded_once(tiny_data_cfg: DataConfig, sampled_cfg: DataConfig) -> None:
    plain = prepare(tiny_data_cfg)
    it = training_batches(plain, tiny_data_cfg, TC)
    assert type(it) is BatchIterator and it.table is not None  # today's path: ids read from Arrow
    assert plain.train.column_names == ["src_ids", "tgt_ids", "src_len", "tgt_len"]
    sampled = prepare(sampled_cfg, plain.tokenizer)
    assert list(sampled.train["src_ids"]) == list(plain.train["src_ids"])
    assert (sampled.dev_src, sampled.dev_tgt) == (plain.dev_src, plain.dev_tgt)  # dev is never sampled


def test_bpe_dropout_without_drops_is_sentencepiece_encode(tiny_data_cfg: DataConfig) -> None:
    corpus = prepare(replace(tiny_data_cfg, spm_alpha=0.1))
    segment = segmenter(corpus.tokenizer.src_model, 64)
    assert isinstance(segment, BpeDropout)
    odd = ["", " ", "ka  lo ", "☃ ka ☃☃ lo ☃", "KA lo mi", "kalomi ne\tru"]  # unknown characters, odd spaces
    texts = _texts(corpus) + odd
    assert sample_all(texts, segment, 0.0, random.Random(0)) == corpus.tokenizer.encode_src(texts)


def test_sampled_pieces_decode_to_the_same_text_and_vary(sampled_cfg: DataConfig) -> None:
    for kind in ("bpe", "unigram"):
        corpus = prepare(replace(sampled_cfg, spm_model_type=kind))
        texts, tok = _texts(corpus), corpus.tokenizer
        segment = segmenter(tok.src_model, 16)
        assert isinstance(segment, BpeDropout if kind == "bpe" else NBestSampling)
        rng = random.Random(1)
        first, second = sample_all(texts, segment, 0.3, rng), sample_all(texts, segment, 0.3, rng)
        assert first != second != tok.encode_src(texts), kind
        assert tok.src.decode(first) == tok.src.decode(second) == tok.src.decode(tok.encode_src(texts)), kind


def test_epochs_differ_and_the_same_seed_and_epoch_give_the_same_batches(sampled_cfg: DataConfig) -> None:
    corpus = prepare(sampled_cfg)
    it = training_batches(corpus, sampled_cfg, TC)
    assert isinstance(it, SampledBatchIterator)
    zero, one = _pieces(it, 0), _pieces(it, 1)
    assert zero[1] != one[1] and zero[2] != one[2]  # both sides sampled anew
    fresh = training_batches(prepare(sampled_cfg, corpus.tokenizer), sampled_cfg, TC)
    assert _pieces(fresh, 1) == one  # epoch 1 straight away, as a resumed run asks for it
    for a, b in zip(it.epoch(1), fresh.epoch(1), strict=True):
        assert torch.equal(it.make(a).src, fresh.make(b).src) and torch.equal(it.make(a).tgt_out, fresh.make(b).tgt_out)
    other = training_batches(corpus, sampled_cfg, replace(TC, seed=8))
    assert _pieces(other, 1)[1] != one[1]
    it.epoch(1)  # batching uses the sampled lengths
    assert it.src_lens.tolist() == [len(x) for x in one[1]] and it.tgt_lens.tolist() == [len(x) for x in one[2]]


def test_sampling_is_the_same_in_another_process(sampled_cfg: DataConfig, tmp_path: Path) -> None:
    """sentencepiece's own sampling is salted per process (absl::BitGen): ours must not be."""
    corpus = prepare(sampled_cfg)
    texts = _texts(corpus)
    model, listing = tmp_path / "m.model", tmp_path / "texts.json"
    model.write_bytes(corpus.tokenizer.src_model)
    listing.write_text(json.dumps(texts))
    code = ("import json, sys; from pathlib import Path; from nmt.data.sampled_batches import epoch_rng; "
            "from nmt.data.subword_sampling import sample_all, segmenter; "
            "seg = segmenter(Path(sys.argv[1]).read_bytes(), 16); texts = json.loads(Path(sys.argv[2]).read_text()); "
            "print(json.dumps(sample_all(texts, seg, 0.3, epoch_rng(7, 2, 'src', 0))))")
    out = subprocess.run([sys.executable, "-c", code, str(model), str(listing)], capture_output=True, text=True,
                         check=True, timeout=120)
    from nmt.data.sampled_batches import epoch_rng

    here = sample_all(texts, segmenter(corpus.tokenizer.src_model, 16), 0.3, epoch_rng(7, 2, "src", 0))
    assert json.loads(out.stdout) == here


def test_only_the_chosen_side_is_sampled_and_max_len_holds(sampled_cfg: DataConfig) -> None:
    corpus = prepare(sampled_cfg)
    fixed_tgt = [list(x) for x in corpus.train["tgt_ids"]]
    cfg = replace(sampled_cfg, spm_sample="src")
    it = training_batches(corpus, cfg, TC)
    zero, one = _pieces(it, 0), _pieces(it, 1)
    assert zero[1] != one[1] and zero[2] == one[2] == fixed_tgt
    longest = max(len(x) for x in [*corpus.train["src_ids"], *corpus.train["tgt_ids"]])
    tight = replace(sampled_cfg, spm_alpha=1.0, max_len=longest)  # every merge dropped: characters, too long
    _, src, tgt = _pieces(training_batches(corpus, tight, TC), 0)
    assert all(0 < len(x) <= longest for x in src + tgt)


def test_bad_settings_are_one_line() -> None:
    with pytest.raises(ConfigValueError, match=r"^data\.spm_alpha=1\.5 is out of range: must be in \[0, 1\]$"):
        DataConfig(spm_alpha=1.5)
    with pytest.raises(ConfigValueError, match=r"^data\.spm_nbest=1 is out of range: must be >= 2$"):
        DataConfig(spm_nbest=1)
    with pytest.raises(ConfigValueError, match="unknown data.spm_sample='source': use src or tgt or both"):
        DataConfig(spm_sample="source")


def test_a_char_model_is_refused(tiny_data_cfg: DataConfig) -> None:
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    proto = model_pb2.ModelProto.FromString(prepare(tiny_data_cfg).tokenizer.src_model)
    proto.trainer_spec.model_type = model_pb2.TrainerSpec.CHAR
    with pytest.raises(NMTError, match="not char ones"):
        segmenter(proto.SerializeToString(), 16)


def _config(data: DataConfig, run_dir: Path, **train_kw) -> Config:
    model = replace(ModelConfig(), emb_dim=8, hidden_dim=16, maxout_dim=6, dropout=0.2)
    tc = replace(TrainConfig(), **{"max_steps": 6, "eval_every": 3, "batch_tokens": 400, "log_every": 100,
                                   **train_kw})
    return Config(data=data, model=model, train=tc, name="test", run_dir=str(run_dir))


def test_a_resumed_sampled_run_equals_an_uninterrupted_one(sampled_cfg: DataConfig, tmp_path: Path) -> None:
    straight = train(_config(sampled_cfg, tmp_path / "straight"))
    assert straight.step == 6 and straight.epoch >= 1  # a resume within epoch 0, then epoch 1 sampled
    train(_config(sampled_cfg, tmp_path / "split", max_steps=3))
    train(_config(sampled_cfg, tmp_path / "split", resume=True))
    a, b = checkpoint.read(tmp_path / "straight" / "last.pt"), checkpoint.read(tmp_path / "split" / "last.pt")
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert a["train_state"]["history"] == b["train_state"]["history"]


def test_training_on_sampled_pieces_learns(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    cfg = _config(replace(tiny_data_cfg, spm_alpha=0.1), tmp_path / "run", max_steps=40, eval_every=40,
                  log_every=10, lr=1e-2)
    train(replace(cfg, model=replace(cfg.model, emb_dim=32, hidden_dim=64, maxout_dim=32, dropout=0.0)))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0], losses


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with gloo is not available")
def test_two_gloo_ranks_train_on_the_same_sampled_epochs(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    """Each rank samples the whole epoch with the run's seed and takes its batches of it: 2 ranks equal one
    process on the union of both ranks' batches, across an epoch boundary (a second sampled epoch)."""
    from test_distributed import STEPS, UnionOfPairs, torchrun
    from test_distributed import _config as dist_config

    data = replace(tiny_data_cfg, vocab_size=40, spm_alpha=0.3)
    ref = setup(dist_config(data, tmp_path / "one"))
    ref.batches = UnionOfPairs(ref.batches)
    assert fit(ref).epoch >= 1
    out = torchrun(data, tmp_path / "ddp", tmp_path, f"train.max_steps={STEPS}", "data.spm_alpha=0.3")
    assert out.returncode == 0, out.stderr[-3000:]
    one, ddp = checkpoint.read(tmp_path / "one" / "last.pt")["model"], checkpoint.read(tmp_path / "ddp" / "last.pt")
    for name, tensor in one.items():
        torch.testing.assert_close(ddp["model"][name], tensor, atol=1e-5, rtol=1e-4, msg=name)
