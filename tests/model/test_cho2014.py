"""Invariant tests for :mod:`nmt.model.cho2014` and what it shares with RNNsearch (nmt.model.base): dropout,
both GRU implementations on the same weights, initialisation, loss and score, and the decoding step."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from helpers import SRC_LENS, TGT_LENS, V_S, V_T, H, model_cfg, random_batch, sub_batch, tiny_model

from nmt.config import ModelConfig
from nmt.data.tokenizer import EOS, PAD
from nmt.model.cho2014 import RNNEncoderDecoder


@pytest.fixture(params=["fused", "equations"])
def cell(request: pytest.FixtureRequest) -> str:
    return request.param


def test_eval_mode_is_deterministic_and_train_mode_uses_dropout() -> None:
    model, b = tiny_model(), random_batch()
    with torch.no_grad():
        assert torch.equal(model.loss(b), model.loss(b))
        model.train()
        assert not torch.equal(model.loss(b), model.loss(b))


# --------------------------------------------------------------------------- cells


def test_fused_and_equations_give_same_loss_on_same_weights() -> None:
    fused, b = tiny_model(cell="fused"), random_batch()
    eq = tiny_model(seed=99, cell="equations")
    eq.load_state_dict(fused.state_dict(), strict=True)
    with torch.no_grad():
        assert (fused.loss(b) - eq.loss(b)).abs().item() <= 1e-5
        torch.testing.assert_close(fused.score(b), eq.score(b), rtol=0, atol=1e-5)
    back = tiny_model(seed=98, cell="fused")
    back.load_state_dict(eq.state_dict(), strict=True)  # and the other way round


def test_gradients_match_between_cells() -> None:
    fused, b = tiny_model(cell="fused"), random_batch()
    eq = tiny_model(cell="equations")
    eq.load_state_dict(fused.state_dict())
    for m in (fused, eq):
        m.loss(b).backward()
    for (name, p), q in zip(fused.named_parameters(), eq.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_reset_before_needs_equations_cell() -> None:
    with pytest.raises(ValueError, match="cell=equations"):
        tiny_model(cell="fused", reset_after=False)
    after, b = tiny_model(cell="equations"), random_batch()
    before = tiny_model(cell="equations", reset_after=False)
    before.load_state_dict(after.state_dict())
    with torch.no_grad():
        assert (after.loss(b) - before.loss(b)).abs().item() > 1e-3  # a different model on the same weights


def test_unknown_cell_and_init_are_rejected() -> None:
    with pytest.raises(ValueError, match="cell"):
        tiny_model(cell="lstm")
    with pytest.raises(ValueError, match="init"):
        tiny_model(init="xavier")


def test_cho2014_init() -> None:
    model = tiny_model(init="cho2014", init_std=0.01)
    for name, p in model.named_parameters():
        if "weight_hh" in name:
            for block in p.detach().chunk(3, dim=0):  # orthogonal per gate block
                torch.testing.assert_close(block @ block.T, torch.eye(H), rtol=0, atol=1e-5)
        elif "bias" in name:
            assert torch.all(p == 0), name
    assert torch.all(model.encoder.embed.weight[PAD] == 0)
    assert torch.all(model.decoder.embed.weight[PAD] == 0)
    assert 0.005 < model.decoder.out.weight.std().item() < 0.02


# --------------------------------------------------------------------------- loss and score


def test_every_parameter_gets_a_gradient() -> None:
    model, b = tiny_model(), random_batch()
    model.train()
    model.loss(b).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_score_is_minus_loss_per_sentence(cell: str) -> None:
    model, b = tiny_model(cell=cell), random_batch()
    with torch.no_grad():
        score = model.score(b)
        assert score.shape == (len(SRC_LENS),) and torch.all(score < 0)
        torch.testing.assert_close(score.sum(), -model.loss(b), rtol=1e-6, atol=1e-5)
        for i in range(len(SRC_LENS)):
            alone = sub_batch(b, [i])
            torch.testing.assert_close(model.score(alone)[0], score[i], rtol=0, atol=1e-5)
            torch.testing.assert_close(-model.loss(alone), score[i], rtol=0, atol=1e-5)


def test_loss_counts_eos_and_not_padding() -> None:
    model, b = tiny_model(), random_batch()
    logits, gold = model.target_logits(b)
    assert logits.shape == (b.n_tgt_tokens, V_T) and gold.shape == (b.n_tgt_tokens,)
    assert int((gold == EOS).sum()) == len(TGT_LENS) and not bool((gold == PAD).any())


def test_score_equals_sum_of_step_logprobs() -> None:
    """Teacher forcing (fused, whole sequence) and the decoding ``step`` compute the same p(y|x)."""
    model, b = tiny_model(), random_batch()
    with torch.no_grad():
        state = model.encode(b.src, b.src_len)
        total = torch.zeros(len(SRC_LENS))
        for t in range(b.tgt_in.shape[1]):
            logp, state, _ = model.step(b.tgt_in[:, t], state)
            assert logp.shape == (len(SRC_LENS), V_T)
            torch.testing.assert_close(logp.exp().sum(-1), torch.ones(len(SRC_LENS)))
            gold = b.tgt_out[:, t]
            total += logp.gather(1, gold.unsqueeze(1)).squeeze(1) * (gold != PAD)
        torch.testing.assert_close(total, model.score(b), rtol=0, atol=1e-5)


def test_reorder_selects_state_rows() -> None:
    model, b = tiny_model(), random_batch()
    with torch.no_grad():
        state = model.encode(b.src, b.src_len)
    h, c = state
    assert h.shape == c.shape == (len(SRC_LENS), H)
    h2, c2 = model.reorder(state, torch.tensor([2, 2, 0]))
    assert torch.equal(h2, h[[2, 2, 0]]) and torch.equal(c2, c[[2, 2, 0]])


def test_describe_rebuilds_the_model() -> None:
    model = tiny_model()
    info = model.describe()
    again = RNNEncoderDecoder(ModelConfig(**info["config"]), info["src_vocab"], info["tgt_vocab"])
    again.load_state_dict(model.state_dict(), strict=True)


@pytest.mark.parametrize("arch", ["cho2014", "rnnsearch"])
def test_tied_embeddings_are_one_matrix_through_training_and_checkpoints(arch: str) -> None:
    from nmt.model import build_model

    cfg = replace(model_cfg(arch=arch, attention_dim=9), maxout_dim=10, tie_embeddings=True)
    torch.manual_seed(0)
    tied, untied = build_model(cfg, V_S, V_T), build_model(replace(cfg, tie_embeddings=False), V_S, V_T)
    assert tied.decoder.out.weight is tied.decoder.embed.weight
    assert sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters()) == V_T * 10
    opt = torch.optim.SGD(tied.parameters(), lr=0.1)
    tied.train().loss(random_batch()).backward()
    opt.step()
    assert torch.equal(tied.decoder.out.weight, tied.decoder.embed.weight)
    again = build_model(cfg, V_S, V_T)
    again.load_state_dict(tied.state_dict())
    assert again.decoder.out.weight is again.decoder.embed.weight
    assert torch.equal(again.decoder.embed.weight, tied.decoder.embed.weight)
    with pytest.raises(ValueError, match="tie_embeddings needs model.maxout_dim"):
        replace(cfg, maxout_dim=6)
