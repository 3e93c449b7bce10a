"""Tests for :mod:`nmt.decoding.ensemble`: an ensemble of one is that model, of two identical models either of them;
members of both architectures combine; members with other vocabularies are refused in one line."""

from __future__ import annotations

import copy
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import V_S, V_T, model_cfg, random_batch, tiny_model
from test_cli import nmt

from nmt.config import Config, DataConfig, DecodeConfig, ModelConfig, TrainConfig
from nmt.decoding.ensemble import Ensemble
from nmt.decoding.search import beam_search, greedy, max_lengths
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.model import build_model
from nmt.training.train import train


def _decode(model, b) -> tuple[list, list]:
    caps = max_lengths(b.src_len, 1.5, extra=4)
    g = [h.tokens for h in greedy(model, b.src, b.src_len, caps)]
    beams = beam_search(model, b.src, b.src_len, caps, beam=3, alpha=1.0, n_best=3)
    return g, [[(h.tokens, round(h.score, 4)) for h in hyps] for hyps in beams]


def test_an_ensemble_of_one_is_that_model_and_of_two_identical_models_either() -> None:
    model, b = tiny_model(seed=3), random_batch()
    with torch.no_grad():
        assert torch.allclose(Ensemble([model]).score(b), model.score(b), atol=1e-5)
        assert torch.allclose(Ensemble([model, copy.deepcopy(model)]).score(b), model.score(b), atol=1e-4)
    assert _decode(Ensemble([model]), b) == _decode(model, b)
    assert _decode(Ensemble([model, copy.deepcopy(model)]), b) == _decode(model, b)


def test_members_of_both_architectures_combine_into_one_distribution() -> None:
    torch.manual_seed(5)
    rnnsearch = build_model(model_cfg(arch="rnnsearch", attention_dim=9), V_S, V_T).eval()
    ens, b = Ensemble([tiny_model(seed=4), rnnsearch]), random_batch()
    with torch.no_grad():
        logp, _, _ = ens.step(torch.full((b.src.shape[0],), 2), ens.encode(b.src, b.src_len))
        assert torch.allclose(logp.exp().sum(-1), torch.ones(b.src.shape[0]), atol=1e-5)
        single = [m.score(b) for m in ens.members]
        combined = ens.score(b)
    assert not torch.allclose(combined, single[0]) and not torch.allclose(combined, single[1])
    g, beams = _decode(ens, b)
    assert len(g) == len(beams) == b.src.shape[0]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, corpus_writer) -> tuple[Path, Path, Path]:
    tmp = tmp_path_factory.mktemp("ensemble")
    data = replace(DataConfig(), name="tiny", format="text", path=str(corpus_writer(tmp / "corpus")), src_lang="xx",
                   tgt_lang="yy", vocab_size=40, cache_dir=str(tmp / "cache"))
    tc = replace(TrainConfig(), max_steps=20, eval_every=20, batch_tokens=300, tensorboard=False, keep_last=0)
    small = replace(ModelConfig(), emb_dim=8, hidden_dim=12, maxout_dim=6)
    for name, model, d in (("a", small, data), ("b", replace(small, arch="rnnsearch", attention_dim=8), data),
                           ("other", small, replace(data, vocab_size=45))):
        train(Config(data=d, model=model, train=tc, name=name, run_dir=str(tmp / name)))
    return tmp / "a", tmp / "b", tmp / "other"


def test_checkpoint_list_builds_an_ensemble_everywhere(two_runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    a, b, _ = two_runs
    single = Translator.open(str(a)).translate(["ka lo mi"], DecodeConfig())
    shutil.copytree(a, tmp_path / "a-copy")
    twice = Translator.open(f"[{a},{tmp_path / 'a-copy'}]")
    assert isinstance(twice.model, Ensemble) and twice.translate(["ka lo mi"], DecodeConfig()) == single
    (tmp_path / "in.xx").write_text("ka lo\nmi ne\n")
    (tmp_path / "in.yy").write_text("cat dog\nsun moon\n")
    out = nmt("translate", f"checkpoint=[{a},{b}]", "input=in.xx", "decode=beam5", cwd=tmp_path)
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 2, out.stderr
    out = nmt("evaluate", f"checkpoint=[{a},{b}]", "splits=[]", "src=in.xx", "ref=in.yy", cwd=tmp_path)
    assert out.returncode == 0 and (a / "eval" / "report.ensemble2-greedy.json").is_file(), out.stderr
    out = nmt("score", f"checkpoint=[{a},{b}]", "src=in.xx", "tgt=in.yy", cwd=tmp_path)
    assert out.returncode == 0 and all(float(x.split()[0]) < 0 for x in out.stdout.splitlines())


def test_members_with_another_vocabulary_are_refused(two_runs: tuple[Path, Path, Path]) -> None:
    a, _, other = two_runs
    with pytest.raises(NMTError, match="different src vocabularies: an ensemble needs one tokenizer"):
        Translator.open(f"[{a},{other}]")
