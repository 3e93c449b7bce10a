"""The decoding contract (nmt.model.contract): every implementation — both architectures with each cell, int8
models, restricted outputs and ensembles — answers it the same way, and search needs nothing else."""

from __future__ import annotations

import pytest
import torch
from helpers import V_S, V_T, model_cfg, random_batch

from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.decoding.device import inference_device
from nmt.decoding.ensemble import Ensemble, restrict_members
from nmt.decoding.quantize import quantize
from nmt.decoding.search import beam_search, greedy, max_lengths
from nmt.errors import NMTError
from nmt.model import build_model
from nmt.model.contract import Decodable, Scorer, Step

KINDS = [(arch, cell) for arch in ("cho2014", "rnnsearch")
         for cell in ({}, {"cell": "equations"}, {"cell_type": "lstm"}, {"cell_type": "elman"})]


def _model(arch: str, seed: int = 0, **kw):
    torch.manual_seed(seed)
    return build_model(model_cfg(arch=arch, attention_dim=9, dropout=0.0, **kw), V_S, V_T).eval()


def _implementations() -> dict[str, object]:
    out = {f"{arch}-{'-'.join(map(str, kw.values())) or 'gru'}": _model(arch, **kw) for arch, kw in KINDS}
    out["rnnsearch-int8"] = quantize(_model("rnnsearch", seed=1), "int8")
    restricted = _model("rnnsearch", seed=2)
    restricted.restrict_output(torch.tensor([5, 7, 9, 11, 13]))
    out["rnnsearch-restricted"] = restricted
    out["ensemble"] = Ensemble([_model("cho2014", seed=3), _model("rnnsearch", seed=4)]).eval()
    return out


IMPLEMENTATIONS = _implementations()


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
@torch.no_grad()
def test_each_implementation_keeps_the_contract(name: str) -> None:
    model, b = IMPLEMENTATIONS[name], random_batch()
    assert isinstance(model, Decodable) and isinstance(model, Scorer)
    columns, n = model.columns, b.src.shape[0]
    assert columns.dim() == 1 and columns[:4].tolist() == [0, 1, 2, 3] and model.device == torch.device("cpu")
    state = model.encode(b.src, b.src_len)
    step = model.step(torch.full((n,), BOS), state)
    assert isinstance(step, Step) and step.scores.shape == (n, len(columns))
    mass = step.scores.logsumexp(-1)  # log-probabilities: at most 1 over the columns, exactly 1 when they are all
    assert bool((mass <= 1e-5).all()) and (len(columns) < V_T or torch.allclose(mass, torch.zeros(n), atol=1e-5))
    logits = model.step(torch.full((n,), BOS), state, normalize=False).scores
    assert torch.equal(logits.argmax(-1), step.scores.argmax(-1))
    assert (step.attention is not None) == model.attends
    if model.attends:
        assert step.attention.shape == b.src.shape and torch.allclose(step.attention.sum(-1), torch.ones(n))
    index = torch.tensor([2, 0, 0])
    moved = model.step(columns[step.scores.argmax(-1)][index], model.reorder(step.state, index))
    again = model.step(columns[step.scores.argmax(-1)], step.state)
    tol = 2e-2 if "int8" in name else 1e-5  # int8 quantizes activations with one scale per batch: mates matter
    torch.testing.assert_close(moved.scores, again.scores[index], atol=tol, rtol=tol)
    assert model.score(b).shape == (n,)


@pytest.mark.parametrize("name", list(IMPLEMENTATIONS))
def test_search_emits_only_the_models_columns(name: str) -> None:
    model, b = IMPLEMENTATIONS[name], random_batch()
    caps, allowed = max_lengths(b.src_len, 1.5, extra=3), set(model.columns.tolist()) - {PAD, BOS, EOS}
    for hyps in [[h] for h in greedy(model, b.src, b.src_len, caps)] + beam_search(model, b.src, b.src_len, caps,
                                                                                      beam=3, n_best=2):
        assert all(set(h.tokens) <= allowed for h in hyps)


def test_ensemble_members_score_the_union_of_their_pieces() -> None:
    a, b_ = _model("cho2014", seed=5), _model("rnnsearch", seed=6)
    restrict_members([a, b_], [torch.tensor([5, 6, 7]), torch.tensor([7, 8])])
    ens = Ensemble([a, b_])
    assert ens.columns.tolist() == [0, 1, 2, 3, 5, 6, 7, 8] and ens.attends
    restrict_members([a, b_], [torch.tensor([5]), None])  # a member that lists none: the whole vocabulary
    assert Ensemble([a, b_]).columns.tolist() == list(range(V_T))
    a.restrict_output(torch.tensor([5]))
    with pytest.raises(ValueError, match="same output columns"):
        Ensemble([a, b_])


def test_inference_device_names_what_is_there() -> None:
    assert inference_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert inference_device("auto") == torch.device("cpu")
        with pytest.raises(NMTError, match="no CUDA GPU is visible"):
            inference_device("cuda:0")
    else:
        assert inference_device("auto") == torch.device("cuda", 0)
        with pytest.raises(NMTError, match="GPU\\(s\\) are visible"):
            inference_device(f"cuda:{torch.cuda.device_count()}")
    with pytest.raises(NMTError, match="use auto, cpu, cuda or cuda:N"):
        inference_device("gpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_model_decodes_on_the_gpu_as_on_the_cpu() -> None:
    model, b = _model("rnnsearch", seed=7), random_batch()
    caps = max_lengths(b.src_len, 1.5, extra=3)
    cpu = [h.tokens for h in greedy(model, b.src, b.src_len, caps)]
    gpu = model.to("cuda")
    assert [h.tokens for h in greedy(gpu, b.src.cuda(), b.src_len.cuda(), caps.cuda())] == cpu
