"""Both architectures with each recurrent unit (``model.cell_type``: GRU, LSTM, Elman): a step-by-step decode
computes the teacher-forced probabilities, padding changes nothing, the fused and equations layers agree, and
checkpoints, search and int8 work the same way."""

from __future__ import annotations

import pytest
import torch
from helpers import V_S, V_T, model_cfg, random_batch, sub_batch

from nmt.data.tokenizer import PAD
from nmt.decoding.quantize import quantize
from nmt.decoding.search import beam_search, greedy, max_lengths
from nmt.model import build_model

CASES = [(arch, unit) for arch in ("cho2014", "rnnsearch") for unit in ("gru", "lstm", "elman")]


def _model(arch: str, unit: str, seed: int = 0, **kw):
    torch.manual_seed(seed)
    return build_model(model_cfg(arch=arch, cell_type=unit, attention_dim=9, dropout=0.0, **kw), V_S, V_T).eval()


@pytest.mark.parametrize(("arch", "unit"), CASES)
def test_step_by_step_decoding_equals_teacher_forcing(arch: str, unit: str) -> None:
    model, b = _model(arch, unit), random_batch()
    with torch.no_grad():
        state, total = model.encode(b.src, b.src_len), torch.zeros(b.src.shape[0])
        for t in range(b.tgt_in.shape[1]):
            logp, state, _ = model.step(b.tgt_in[:, t], state)
            gold = b.tgt_out[:, t]
            total += logp.gather(1, gold.unsqueeze(1)).squeeze(1) * (gold != PAD)
        torch.testing.assert_close(total, model.score(b), rtol=0, atol=1e-4)


@pytest.mark.parametrize(("arch", "unit"), CASES)
def test_batch_mates_and_padding_change_nothing(arch: str, unit: str) -> None:
    model, b = _model(arch, unit), random_batch()
    with torch.no_grad():
        together = model.score(b)
        alone = torch.stack([model.score(sub_batch(b, [i]))[0] for i in range(b.src.shape[0])])
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-4)


@pytest.mark.parametrize("arch", ["cho2014", "rnnsearch"])
def test_fused_and_equations_elman_compute_the_same_model(arch: str) -> None:
    fused, b = _model(arch, "elman"), random_batch()
    eq = _model(arch, "elman", seed=9, cell="equations")
    eq.load_state_dict(fused.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(eq.score(b), fused.score(b), rtol=0, atol=1e-4)


@pytest.mark.parametrize(("arch", "unit"), CASES)
def test_search_checkpoints_and_int8_work_for_every_unit(arch: str, unit: str) -> None:
    model, b = _model(arch, unit), random_batch()
    caps = max_lengths(b.src_len, 1.5, extra=3)
    g = [h.tokens for h in greedy(model, b.src, b.src_len, caps)]
    assert [h[0].tokens for h in beam_search(model, b.src, b.src_len, caps, beam=1, alpha=0.0)] == g
    again = build_model(model.cfg, V_S, V_T).eval()
    again.load_state_dict(model.state_dict(), strict=True)
    assert [h.tokens for h in greedy(again, b.src, b.src_len, caps)] == g
    q = quantize(again, "int8")
    assert len(greedy(q, b.src, b.src_len, caps)) == len(g)


def test_lstm_has_no_equations_layer_and_units_differ_in_size() -> None:
    with pytest.raises(ValueError, match="cell=equations is written for cell_type=gru and elman"):
        model_cfg(cell_type="lstm", cell="equations")
    sizes = {u: sum(p.numel() for p in _model("cho2014", u).parameters()) for u in ("elman", "gru", "lstm")}
    assert sizes["elman"] < sizes["gru"] < sizes["lstm"]
