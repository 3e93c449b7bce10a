"""int8 dynamic quantization for decoding, and the allocator setting that training uses."""

from __future__ import annotations

import copy
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from test_translate import LINES, run  # noqa: F401  (the module-scoped tiny trained run)

from nmt.config import DecodeConfig, ModelConfig
from nmt.data.batching import collate
from nmt.decoding.quantize import quantize
from nmt.decoding.search import greedy
from nmt.decoding.translate import Translator
from nmt.errors import NMTError
from nmt.model import build_model

from test_cli import last_line, nmt  # isort: skip


@pytest.mark.parametrize("arch", ["cho2014", "rnnsearch"])
def test_int8_model_gives_close_probabilities_and_decodes(arch: str) -> None:
    torch.manual_seed(0)
    cfg = replace(ModelConfig(), arch=arch, emb_dim=32, hidden_dim=48, attention_dim=40, maxout_dim=24,
                  dropout=0.0, init="torch")
    model = build_model(cfg, 50, 40).eval()
    q = quantize(copy.deepcopy(model), "int8")
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in q.modules())
    assert quantize(model, "none") is model
    batch = collate([[5, 6, 7, 8], [9, 10]], [[], []], range(2))
    prev = torch.tensor([2, 2])
    with torch.no_grad():
        lp, state, _ = model.step(prev, model.encode(batch.src, batch.src_len))
        qlp, qstate, _ = q.step(prev, q.encode(batch.src, batch.src_len))
        for _ in range(3):  # a few more steps on the same inputs: the error does not build up
            prev = lp.argmax(-1)
            lp, state, _ = model.step(prev, state)
            qlp, qstate, _ = q.step(prev, qstate)
        out = [h.tokens for h in greedy(q, batch.src, batch.src_len, torch.tensor([6, 6]))]
    spread = lp.max() - lp.min()
    assert (qlp - lp).abs().max() < 0.05 * spread  # int8 weights against fp32: log-probabilities within 5%
    assert (qlp - lp).abs().max() > 0  # it really is another computation
    assert len(out) == 2 and all(len(o) <= 6 for o in out)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(NMTError, match="quantize='int4'"):
        quantize(torch.nn.Linear(2, 2), "int4")


def test_translate_and_evaluate_take_quantize(run, tmp_path) -> None:  # noqa: F811
    fp32, int8 = Translator.open(str(run)), Translator.open(str(run), "int8")
    dc = DecodeConfig()
    assert [bool(x) for x in int8.translate(LINES, dc)] == [bool(x) for x in fp32.translate(LINES, dc)]
    src = tmp_path / "in.xx"
    src.write_text("".join(x + "\n" for x in LINES), encoding="utf-8")
    out = nmt("translate", f"checkpoint={run}", f"input={src}", "quantize=int8", "decode=beam5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == len(LINES)
    bad = nmt("translate", f"checkpoint={run}", f"input={src}", "quantize=fp8", cwd=tmp_path)
    assert bad.returncode == 2 and "quantize=fp8; Invalid value 'fp8', expected one of [none, int8]" in \
        last_line(bad.stderr)


FAULTS = """
import resource, sys, torch
from nmt.runtime.allocator import keep_freed_memory
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        x = torch.ones(16 << 20)  # 64 MiB, freed at the next iteration
        del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults()
plain = faults()
ok = keep_freed_memory()
print(ok, plain, [faults() for _ in range(4)][-1])  # the heap grows over the first rounds, then is reused
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_stops_page_faults_on_repeated_large_tensors() -> None:
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ok, plain, kept = out.stdout.split()
    if ok != "True":
        pytest.skip("this C library does not take the setting")
    assert int(plain) > 5 * 16_000  # without it, every 64 MiB tensor faults in its ~16k pages again
    assert int(kept) < int(plain) / 10
