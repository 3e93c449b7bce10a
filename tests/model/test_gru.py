"""Tests for :mod:`nmt.model.gru` against ``torch.nn`` and the paper equations."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.model.gru import EquationsGRU, GRUCell, gru_step

# Tiny, mutually distinct dimensions.
IN, H, B, T = 5, 7, 3, 6  # IN (input), H (hidden), B (batch), T (time)
LENGTHS = [6, 2, 4]  # unsorted, one full-length sequence


def _gates(cell: GRUCell, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One step of ``cell`` with its gates: (h', r, z) from :func:`gru_step`."""
    xw = torch.nn.functional.linear(x, cell.weight_ih, cell.bias_ih)
    return gru_step(xw, h, cell.weight_hh, cell.bias_hh, reset_after=cell.reset_after)


def _copy_cell(src: nn.Module, dst: nn.Module) -> None:
    """Copy ``weight_ih/weight_hh/bias_ih/bias_hh`` from ``src`` into ``dst``."""
    dst.load_state_dict(src.state_dict(), strict=True)


# --------------------------------------------------------------------------- GRUCell


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reset_after_cell_matches_torch_grucell(seed: int) -> None:
    torch.manual_seed(seed)
    ref = nn.GRUCell(IN, H)
    cell = GRUCell(IN, H, reset_after=True)
    _copy_cell(ref, cell)
    max_diff = 0.0
    for _ in range(4):
        x, h = torch.randn(B, IN) * 2, torch.randn(B, H)
        max_diff = max(max_diff, (cell(x, h) - ref(x, h)).abs().max().item())
    assert max_diff <= 1e-6


def _taught_reset_before(cell: GRUCell, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Independent transcription of Cho et al. (2014) eqs. 5–8 (reset-before).

    Uses the module's documented convention: the stored update row gives the
    pre-activation ``a_u`` of torch's keep gate, and ``z = σ(−a_u)``.
    """
    w_ih, w_hh = cell.weight_ih.detach(), cell.weight_hh.detach()
    b_ih, b_hh = cell.bias_ih.detach(), cell.bias_hh.detach()
    W_r, W_z, W = w_ih[0:H], w_ih[H : 2 * H], w_ih[2 * H : 3 * H]
    U_r, U_z, U = w_hh[0:H], w_hh[H : 2 * H], w_hh[2 * H : 3 * H]
    b_ir, b_iz, b_in = b_ih[0:H], b_ih[H : 2 * H], b_ih[2 * H : 3 * H]
    b_hr, b_hz, b_hn = b_hh[0:H], b_hh[H : 2 * H], b_hh[2 * H : 3 * H]

    r = torch.sigmoid(x @ W_r.T + b_ir + h @ U_r.T + b_hr)  # eq. 5
    a_u = x @ W_z.T + b_iz + h @ U_z.T + b_hz
    z = torch.sigmoid(-a_u)  # eq. 6, taught sign
    h_tilde = torch.tanh(x @ W.T + b_in + (r * h) @ U.T + b_hn)  # eq. 8
    h_new = (1 - z) * h + z * h_tilde  # eq. 7, taught form
    return h_new, r, z


def test_reset_before_cell_matches_taught_equations() -> None:
    torch.manual_seed(3)
    cell = GRUCell(IN, H, reset_after=False).double()
    max_diff = 0.0
    for _ in range(4):
        x = torch.randn(B, IN, dtype=torch.float64) * 2
        h = torch.randn(B, H, dtype=torch.float64)
        expected = _taught_reset_before(cell, x, h)
        got = _gates(cell, x, h)
        for e, g in zip(expected, got, strict=True):
            max_diff = max(max_diff, (e - g).abs().max().item())
        assert torch.equal(cell(x, h), got[0])
    assert max_diff <= 1e-10


def test_update_gate_is_complement_of_torch_keep_gate() -> None:
    torch.manual_seed(4)
    cell = GRUCell(IN, H, reset_after=True).double()
    x, h = torch.randn(B, IN, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    a_u = (x @ cell.weight_ih[H : 2 * H].T + cell.bias_ih[H : 2 * H]) + (
        h @ cell.weight_hh[H : 2 * H].T + cell.bias_hh[H : 2 * H]
    )
    _, _, z = _gates(cell, x, h)
    torch.testing.assert_close(z, 1 - torch.sigmoid(a_u), rtol=0, atol=1e-12)


def test_variants_differ_on_same_weights() -> None:
    torch.manual_seed(5)
    before = GRUCell(IN, H, reset_after=False)
    after = GRUCell(IN, H, reset_after=True)
    _copy_cell(before, after)
    x, h = torch.randn(B, IN), torch.randn(B, H)
    assert (before(x, h) - after(x, h)).abs().max().item() > 1e-4


def test_cell_parameter_layout_matches_torch() -> None:
    ref = nn.GRUCell(IN, H)
    cell = GRUCell(IN, H, reset_after=True)
    assert {k: v.shape for k, v in cell.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }


@pytest.mark.parametrize("reset_after", [False, True])
def test_cell_gradcheck(reset_after: bool) -> None:
    torch.manual_seed(6)
    cell = GRUCell(2, 3, reset_after=reset_after).double()
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in cell.parameters()]
    x = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)

    def f(x: Tensor, h: Tensor, *ps: Tensor) -> Tensor:
        return functional_call(cell, dict(zip(names, ps, strict=True)), (x, h))

    assert torch.autograd.gradcheck(f, (x, h, *params))


# --------------------------------------------------------------------------- EquationsGRU


def _torch_gru(gru: nn.GRU, x: Tensor, h0: Tensor, lengths: list[int] | None) -> tuple[Tensor, Tensor]:
    """Reference: ``nn.GRU`` over a packed (or unpacked) batch-first batch."""
    if lengths is None:
        return gru(x, h0)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    out, h_n = gru(packed, h0)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, h_n


def _padding_mask(lengths: list[int], time: int) -> Tensor:
    """``(B, T)`` bool mask, True at real positions."""
    return torch.arange(time)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS])
@pytest.mark.parametrize("with_h0", [False, True])
def test_equations_gru_matches_torch_gru(
    bidirectional: bool, lengths: list[int] | None, with_h0: bool
) -> None:
    torch.manual_seed(7)
    d = 2 if bidirectional else 1
    ref = nn.GRU(IN, H, batch_first=True, bidirectional=bidirectional)
    gru = EquationsGRU(IN, H, bidirectional=bidirectional, reset_after=True)
    gru.load_state_dict(ref.state_dict(), strict=True)

    x = torch.randn(B, T, IN)
    h0 = torch.randn(d, B, H) if with_h0 else torch.zeros(d, B, H)
    len_t = None if lengths is None else torch.tensor(lengths)

    with torch.no_grad():
        exp_out, exp_h = _torch_gru(ref, x, h0, lengths)
        got_out, got_h = gru(x, h0 if with_h0 else None, len_t)

    assert got_out.shape == (B, T, d * H) and got_h.shape == (d, B, H)
    real = _padding_mask(lengths or [T] * B, T)
    assert (got_out[real] - exp_out[real]).abs().max().item() <= 1e-5
    assert (got_h - exp_h).abs().max().item() <= 1e-5
    assert torch.all(got_out[~real] == 0)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("reset_after", [False, True])
def test_padding_invariance(bidirectional: bool, reset_after: bool) -> None:
    torch.manual_seed(8)
    gru = EquationsGRU(IN, H, bidirectional=bidirectional, reset_after=reset_after)
    lengths = torch.tensor(LENGTHS)
    x = torch.randn(B, T, IN)
    # Garbage (not zeros) in the padded positions of the original batch too.
    x_pad = torch.cat([x, 100 * torch.randn(B, 4, IN)], dim=1)
    with torch.no_grad():
        out, h_n = gru(x, lengths=lengths)
        out_pad, h_n_pad = gru(x_pad, lengths=lengths)
    torch.testing.assert_close(out_pad[:, :T], out, rtol=0, atol=1e-6)
    assert torch.all(out_pad[:, T:] == 0)
    torch.testing.assert_close(h_n_pad, h_n, rtol=0, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_reset_before_gru_matches_stepping_cells(bidirectional: bool) -> None:
    torch.manual_seed(9)
    gru = EquationsGRU(IN, H, bidirectional=bidirectional, reset_after=False).double()
    x = torch.randn(B, T, IN, dtype=torch.float64)
    lengths = LENGTHS
    with torch.no_grad():
        out, h_n = gru(x, lengths=torch.tensor(lengths))
    for d, suffix in enumerate(["", "_reverse"][: 2 if bidirectional else 1]):
        cell = GRUCell(IN, H, reset_after=False).double()
        cell.load_state_dict(
            {k[: -len("_l0" + suffix)]: v for k, v in gru.state_dict().items() if k.endswith("_l0" + suffix)}
        )
        for b, n in enumerate(lengths):
            h = torch.zeros(1, H, dtype=torch.float64)
            steps = range(n - 1, -1, -1) if d == 1 else range(n)
            with torch.no_grad():
                for t in steps:
                    h = cell(x[b : b + 1, t], h)
                    torch.testing.assert_close(out[b, t, d * H : (d + 1) * H], h[0], rtol=0, atol=1e-12)
            torch.testing.assert_close(h_n[d, b], h[0], rtol=0, atol=1e-12)


def test_equations_gru_gradcheck_with_lengths() -> None:
    torch.manual_seed(10)
    gru = EquationsGRU(2, 3, bidirectional=True, reset_after=True).double()
    names = [n for n, _ in gru.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in gru.parameters()]
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 2])

    def f(x: Tensor, h0: Tensor, *ps: Tensor) -> tuple[Tensor, Tensor]:
        return functional_call(gru, dict(zip(names, ps, strict=True)), (x, h0, lengths))

    assert torch.autograd.gradcheck(f, (x, h0, *params))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_state_dict_round_trip(bidirectional: bool) -> None:
    torch.manual_seed(11)
    ref = nn.GRU(IN, H, batch_first=True, bidirectional=bidirectional)
    gru = EquationsGRU(IN, H, bidirectional=bidirectional)
    assert {k: v.shape for k, v in gru.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }
    gru.load_state_dict(ref.state_dict(), strict=True)
    back = nn.GRU(IN, H, batch_first=True, bidirectional=bidirectional)
    back.load_state_dict(gru.state_dict(), strict=True)
    for k, v in ref.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)


def test_rejects_bad_shapes() -> None:
    gru = EquationsGRU(IN, H, bidirectional=True)
    with pytest.raises(ValueError):
        gru(torch.randn(B, T, IN + 1))
    with pytest.raises(ValueError):
        gru(torch.randn(B, T, IN), torch.zeros(1, B, H))
    with pytest.raises(ValueError):
        gru(torch.randn(B, T, IN), lengths=torch.tensor([T] * (B + 1)))
