"""scripts/gpu_check.py (``make gpu-check``): its verdict on loss curves, and its clear failure without a GPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_flags_windows_beyond_tolerance() -> None:
    cpu = [{"step": 25, "loss": 8.0}, {"step": 50, "loss": 6.0}]
    gpu = [{"step": 25, "loss": 8.08}, {"step": 50, "loss": 6.3}]
    lines = _module().compare(cpu, gpu, rel_tol=0.02)
    assert [line[:4] for line in lines] == ["ok  ", "FAIL"]  # 1% then 5% apart
    assert "step    50" in lines[1] and "rel 5.00e-02" in lines[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the check would run")
def test_without_gpu_it_stops_with_one_line() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT), "--steps", "2"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "no CUDA GPU is visible" in out.stderr
