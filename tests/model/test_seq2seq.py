"""Invariant tests for :mod:`nmt.model.seq2seq` (encoder, decoder, loss, score) and :mod:`nmt.search`."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import Tensor

from nmt.config import ModelConfig
from nmt.data.batching import Batch, collate
from nmt.data.tokenizer import BOS, EOS, PAD
from nmt.model.seq2seq import EncoderDecoder, Seq2Seq
from nmt.search import greedy, max_lengths

# Tiny, mutually distinct dimensions: E (emb), H (hidden), M (maxout), V_S / V_T (vocabularies).
E, H, M, V_S, V_T = 10, 14, 6, 23, 19
SRC_LENS, TGT_LENS = [5, 2, 7, 1], [3, 6, 1, 4]  # unsorted, one length-1 sentence each


def _cfg(**kw) -> ModelConfig:
    # init="torch": weights large enough that argmax decisions are not near-ties.
    return replace(ModelConfig(), **{"emb_dim": E, "hidden_dim": H, "maxout_dim": M, "dropout": 0.3,
                                     "init": "torch", **kw})


def _model(seed: int = 0, **kw) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(_cfg(**kw), V_S, V_T).eval()


def _batch(seed: int = 1, src_lens: list[int] = SRC_LENS, tgt_lens: list[int] = TGT_LENS) -> Batch:
    g = torch.Generator().manual_seed(seed)
    src = [torch.randint(EOS + 1, V_S, (n,), generator=g).tolist() for n in src_lens]
    tgt = [torch.randint(EOS + 1, V_T, (n,), generator=g).tolist() for n in tgt_lens]
    return collate(src, tgt, range(len(src)))


def _rows(b: Batch, rows: list[int]) -> Batch:
    """A sub-batch, re-collated (so its padding is only as wide as its own longest sentence)."""
    src = [b.src[i, : b.src_len[i]].tolist() for i in rows]
    tgt = [b.tgt_out[i, : int((b.tgt_out[i] != PAD).sum()) - 1].tolist() for i in rows]
    return collate(src, tgt, rows)


@pytest.fixture(params=["fused", "equations"])
def cell(request: pytest.FixtureRequest) -> str:
    return request.param


# --------------------------------------------------------------------------- encoder


def test_encoder_shapes_and_zero_padding(cell: str) -> None:
    model, b = _model(cell=cell), _batch()
    with torch.no_grad():
        states, c = model.encoder(b.src, b.src_len)
    assert states.shape == (len(SRC_LENS), max(SRC_LENS), H) and c.shape == (len(SRC_LENS), H)
    assert torch.all(states[~b.src_mask] == 0)
    assert torch.all(c.abs() < 1)  # c = tanh(V h_N)


def test_encoder_ignores_extra_padding(cell: str) -> None:
    model, b = _model(cell=cell), _batch()
    wide = torch.cat([b.src, torch.full((b.src.shape[0], 4), PAD)], dim=1)
    with torch.no_grad():
        states, c = model.encoder(b.src, b.src_len)
        states_w, c_w = model.encoder(wide, b.src_len)
    torch.testing.assert_close(states_w[:, : b.src.shape[1]], states, rtol=0, atol=1e-6)
    assert torch.all(states_w[:, b.src.shape[1]:] == 0)
    torch.testing.assert_close(c_w, c, rtol=0, atol=1e-6)


def test_encoder_result_does_not_depend_on_batch_mates(cell: str) -> None:
    model, b = _model(cell=cell), _batch()
    short = 1  # length 2, batched with a length-7 sentence
    alone = _rows(b, [short])
    with torch.no_grad():
        states, c = model.encoder(b.src, b.src_len)
        states_1, c_1 = model.encoder(alone.src, alone.src_len)
    n = SRC_LENS[short]
    torch.testing.assert_close(states[short, :n], states_1[0, :n], rtol=0, atol=1e-6)
    torch.testing.assert_close(c[short], c_1[0], rtol=0, atol=1e-6)


def test_eval_mode_is_deterministic_and_train_mode_uses_dropout() -> None:
    model, b = _model(), _batch()
    with torch.no_grad():
        assert torch.equal(model.loss(b), model.loss(b))
        model.train()
        assert not torch.equal(model.loss(b), model.loss(b))


# --------------------------------------------------------------------------- cells


def test_fused_and_equations_give_same_loss_on_same_weights() -> None:
    fused, b = _model(cell="fused"), _batch()
    eq = _model(seed=99, cell="equations")
    eq.load_state_dict(fused.state_dict(), strict=True)
    with torch.no_grad():
        assert (fused.loss(b) - eq.loss(b)).abs().item() <= 1e-5
        torch.testing.assert_close(fused.score(b), eq.score(b), rtol=0, atol=1e-5)
    back = _model(seed=98, cell="fused")
    back.load_state_dict(eq.state_dict(), strict=True)  # and the other way round


def test_gradients_match_between_cells() -> None:
    fused, b = _model(cell="fused"), _batch()
    eq = _model(cell="equations")
    eq.load_state_dict(fused.state_dict())
    for m in (fused, eq):
        m.loss(b).backward()
    for (name, p), q in zip(fused.named_parameters(), eq.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_reset_before_needs_equations_cell() -> None:
    with pytest.raises(ValueError, match="cell=equations"):
        _model(cell="fused", reset_after=False)
    after, b = _model(cell="equations"), _batch()
    before = _model(cell="equations", reset_after=False)
    before.load_state_dict(after.state_dict())
    with torch.no_grad():
        assert (after.loss(b) - before.loss(b)).abs().item() > 1e-3  # a different model on the same weights


def test_unknown_cell_and_init_are_rejected() -> None:
    with pytest.raises(ValueError, match="cell"):
        _model(cell="lstm")
    with pytest.raises(ValueError, match="init"):
        _model(init="xavier")


def test_cho2014_init() -> None:
    model = _model(init="cho2014", init_std=0.01)
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
    model, b = _model(), _batch()
    model.train()
    model.loss(b).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_score_is_minus_loss_per_sentence(cell: str) -> None:
    model, b = _model(cell=cell), _batch()
    with torch.no_grad():
        score = model.score(b)
        assert score.shape == (len(SRC_LENS),) and torch.all(score < 0)
        torch.testing.assert_close(score.sum(), -model.loss(b), rtol=1e-6, atol=1e-5)
        for i in range(len(SRC_LENS)):
            alone = _rows(b, [i])
            torch.testing.assert_close(model.score(alone)[0], score[i], rtol=0, atol=1e-5)
            torch.testing.assert_close(-model.loss(alone), score[i], rtol=0, atol=1e-5)


def test_loss_counts_eos_and_not_padding() -> None:
    model, b = _model(), _batch()
    logits, gold = model.token_logprobs(b)
    assert logits.shape == (b.n_tgt_tokens, V_T) and gold.shape == (b.n_tgt_tokens,)
    assert int((gold == EOS).sum()) == len(TGT_LENS) and not bool((gold == PAD).any())


def test_score_equals_sum_of_step_logprobs() -> None:
    """Teacher forcing (fused, whole sequence) and the decoding ``step`` compute the same p(y|x)."""
    model, b = _model(), _batch()
    with torch.no_grad():
        state = model.encode(b.src, b.src_len)
        total = torch.zeros(len(SRC_LENS))
        for t in range(b.tgt_in.shape[1]):
            logp, state = model.step(b.tgt_in[:, t], state)
            assert logp.shape == (len(SRC_LENS), V_T)
            torch.testing.assert_close(logp.exp().sum(-1), torch.ones(len(SRC_LENS)))
            gold = b.tgt_out[:, t]
            total += logp.gather(1, gold.unsqueeze(1)).squeeze(1) * (gold != PAD)
        torch.testing.assert_close(total, model.score(b), rtol=0, atol=1e-5)


def test_reorder_selects_state_rows() -> None:
    model, b = _model(), _batch()
    with torch.no_grad():
        h, c = model.encode(b.src, b.src_len)
    assert h.shape == c.shape == (len(SRC_LENS), H)
    h2, c2 = model.reorder((h, c), torch.tensor([2, 2, 0]))
    assert torch.equal(h2, h[[2, 2, 0]]) and torch.equal(c2, c[[2, 2, 0]])


def test_describe_rebuilds_the_model() -> None:
    model = _model()
    info = model.describe()
    again = Seq2Seq(ModelConfig(**info["config"]), info["src_vocab"], info["tgt_vocab"])
    again.load_state_dict(model.state_dict(), strict=True)


# --------------------------------------------------------------------------- greedy search


def test_greedy_is_argmax_of_teacher_forcing_on_its_own_output(cell: str) -> None:
    model, b = _model(cell=cell, dropout=0.0), _batch()
    model = model.double()  # no near-ties between the two computations
    caps = torch.tensor([4, 9, 2, 12])
    stopped, capped = 0, 0
    for eos_bias in (0.0, 0.5, 1.0, 1.5, 2.0):  # from "never EOS" to "EOS at once": both endings occur
        with torch.no_grad():
            model.decoder.out.bias[EOS] += eos_bias
        hyps = greedy(model, b.src, b.src_len, caps)
        for i, y in enumerate(hyps):
            assert len(y) <= int(caps[i]) and EOS not in y
            forced = collate([b.src[i, : b.src_len[i]].tolist()], [y], [i])
            with torch.no_grad():
                _, c = model.encoder(forced.src, forced.src_len)
                logits = model.decoder.out(model.decoder.features(forced.tgt_in, c))
                logits[..., [PAD, BOS]] = float("-inf")  # search never emits these
                pred = logits.argmax(-1)[0]
            assert pred[: len(y)].tolist() == y
            if len(y) < int(caps[i]):  # stopped early: because the model predicted EOS
                assert int(pred[len(y)]) == EOS
                stopped += 1
            else:
                capped += 1
        with torch.no_grad():
            model.decoder.out.bias[EOS] -= eos_bias
    assert stopped > 0 and capped > 0  # both ways of ending were exercised


def test_greedy_of_a_batch_equals_greedy_of_each_sentence() -> None:
    model, b = _model(), _batch()
    caps = max_lengths(b.src_len, 1.5, extra=3)
    hyps = greedy(model, b.src, b.src_len, caps)
    for i in range(len(SRC_LENS)):
        alone = _rows(b, [i])
        assert greedy(model, alone.src, alone.src_len, caps[i : i + 1]) == [hyps[i]]


class ScriptedModel:
    """A stand-in for Seq2Seq whose step emits a fixed token sequence per row, with no network."""

    def __init__(self, scripts: list[list[int]], vocab: int = 8) -> None:
        self.scripts, self.vocab = scripts, vocab

    def encode(self, src: Tensor, src_len: Tensor) -> tuple[Tensor, Tensor]:
        return torch.zeros(src.shape[0], dtype=torch.long), torch.arange(src.shape[0])

    def step(self, prev: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        t, rows = state
        logp = torch.full((len(rows), self.vocab), -10.0)
        for k, (i, ti) in enumerate(zip(rows.tolist(), t.tolist(), strict=True)):
            script = self.scripts[i]
            logp[k, script[ti] if ti < len(script) else 4] = -0.1
        return logp, (t + 1, rows)

    reorder = staticmethod(EncoderDecoder.reorder)  # the search drops finished rows


def test_greedy_stops_at_eos_and_respects_max_len() -> None:
    scripts = [[5, 6, EOS, 7, 7], [4, 4, 4, 4, 4, 4, 4], [EOS], [6, 5, 4, 6, 5, 4]]
    model = ScriptedModel(scripts)
    src = torch.full((4, 3), 5)
    hyps = greedy(model, src, torch.full((4,), 3), torch.tensor([10, 3, 10, 5]))
    assert hyps == [[5, 6], [4, 4, 4], [], [6, 5, 4, 6, 5]]


def test_greedy_stops_when_all_rows_are_done() -> None:
    calls = []

    class Counting(ScriptedModel):
        def step(self, prev: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
            calls.append(prev.tolist())
            return super().step(prev, state)

    hyps = greedy(Counting([[5, EOS], [EOS]]), torch.full((2, 1), 5), torch.ones(2, dtype=torch.long),
                  torch.tensor([50, 50]))
    assert hyps == [[5], []]
    assert len(calls) == 2 and calls[0] == [BOS, BOS]


def test_max_lengths() -> None:
    assert max_lengths(torch.tensor([1, 4, 10]), 2.0).tolist() == [12, 18, 30]
    assert max_lengths(torch.tensor([3]), 1.5, extra=0).tolist() == [4]


def test_reverse_source_equals_encoding_the_reversed_sentence() -> None:
    model, b = _model(reverse_source=False), _batch()
    rev = _model(reverse_source=True)
    rev.load_state_dict(model.state_dict())
    with torch.no_grad():
        _, c_rev = rev.encoder(b.src, b.src_len)
        for i, n in enumerate(b.src_len.tolist()):
            backwards = b.src[i, :n].flip(0).unsqueeze(0)
            _, c = model.encoder(backwards, b.src_len[i : i + 1])
            torch.testing.assert_close(c_rev[i], c[0], atol=1e-6, rtol=0)
