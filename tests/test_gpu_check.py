"""nmt/bench/gpu_check.py (``make gpu-check``): its verdict on loss curves, and its clear failure without a GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt.bench import gpu_check

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_compare_flags_windows_beyond_tolerance() -> None:
    cpu = [{"step": 25, "loss": 8.0}, {"step": 50, "loss": 6.0}]
    gpu = [{"step": 25, "loss": 8.08}, {"step": 50, "loss": 6.3}]
    lines = gpu_check.compare(cpu, gpu, rel_tol=0.02)
    assert [line[:4] for line in lines] == ["ok  ", "FAIL"]  # 1% then 5% apart
    assert "step    50" in lines[1] and "rel 5.00e-02" in lines[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the check would run")
def test_without_gpu_it_stops_with_one_line() -> None:
    out = subprocess.run([sys.executable, "-m", "nmt.bench.gpu_check", "--steps", "2"], capture_output=True, text=True,
                         timeout=120, cwd=REPO_ROOT)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "no CUDA GPU is visible" in out.stderr
