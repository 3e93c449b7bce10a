"""``make gpu-check``: train a few hundred Multi30k updates on one GPU and on the CPU, from the same initial weights
and the same batches, print target tokens/s of both, and check that the GPU's loss curve follows the CPU's; then
translate the test split with the GPU run's model on both devices (greedy and beam 5): sentences/s of each and the
share of identical translations.

Not part of the test suite (it needs a GPU); about 2-4 minutes on an H100 machine with 16 cores, most of it the CPU
run. Without a GPU it stops at once with a one-line error and exit status 2. Exit status 1: the curves differ.

    python -m nmt.bench.gpu_check [--steps 300] [--precision fp32|bf16] [--data ../shared/data/multi30k]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from nmt.config import Config, DataConfig, ModelConfig, SplitNames, TrainConfig
from nmt.training.train import train

REPO_ROOT = Path(__file__).resolve().parents[2]

LOG_EVERY = 25


def multi30k(folder: Path, cache: Path) -> DataConfig:
    """Multi30k de->en from local ``{train,val,test_2016_flickr}.{de,en}.gz`` (conf/data/multi30k.yaml's files)."""
    return replace(DataConfig(), name="multi30k-de-en", format="hub", local_dir=str(folder), src_lang="de",
                   tgt_lang="en", local_splits=SplitNames(train="train", dev="val", test="test_2016_flickr"),
                   cache_dir=str(cache))


def run(data: DataConfig, run_dir: Path, device: str, steps: int, precision: str) -> list[dict]:
    """``steps`` updates of the small model without dropout (so both devices compute the same function)."""
    cfg = Config(data=data, model=replace(ModelConfig(), dropout=0.0),
                 train=replace(TrainConfig(), device=device, precision=precision, max_steps=steps, eval_every=steps,
                               eval_max_sentences=100, log_every=LOG_EVERY, keep_last=0, patience=0),
                 name=f"gpu-check-{device}", run_dir=str(run_dir))
    train(cfg)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == "train"]


def compare(cpu: list[dict], gpu: list[dict], rel_tol: float) -> list[str]:
    """One line per logged window (mean loss over LOG_EVERY updates); a line starts with FAIL where the relative
    difference exceeds ``rel_tol``."""
    lines = []
    for c, g in zip(cpu, gpu, strict=True):
        rel = abs(g["loss"] - c["loss"]) / c["loss"]
        mark = "FAIL" if rel > rel_tol else "ok  "
        lines.append(f"{mark} step {c['step']:>5}  cpu loss {c['loss']:.4f}  gpu loss {g['loss']:.4f}  rel {rel:.2e}")
    return lines


def decode_rows(best: Path, data: DataConfig, sentences: int = 1000) -> list[str]:
    """Greedy and beam-5 translation of the first test sentences on the GPU and the CPU (Translator, device=):
    one line per method with sentences/s on each device and the share of identical outputs."""
    from nmt.config import DecodeConfig
    from nmt.data.load import load_split
    from nmt.decoding.translate import Translator

    src = list(load_split(data, "test")["src"][:sentences])
    lines = []
    for method in ("greedy", "beam"):
        out, rate = {}, {}
        for device in ("cuda", "cpu"):
            translator, dc = Translator.open(best, device=device), DecodeConfig(method=method, beam=5)
            translator.translate(src[:32], dc)  # warm-up: kernels, caches
            start = time.monotonic()
            out[device] = translator.translate(src, dc)
            rate[device] = len(src) / (time.monotonic() - start)
        same = sum(a == b for a, b in zip(out["cuda"], out["cpu"], strict=True)) / len(src)
        lines.append(f"decode {method:6}: gpu {rate['cuda']:,.0f} sent/s  cpu {rate['cpu']:,.0f} sent/s  "
                     f"(x{rate['cuda'] / rate['cpu']:.1f}); identical outputs {same:.1%} of {len(src)}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--data", default=str(REPO_ROOT / ".." / "shared" / "data" / "multi30k"))
    ap.add_argument("--tol", type=float, default=None, help="relative loss tolerance (fp32 0.02, bf16 0.05)")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu-check: error: no CUDA GPU is visible (torch.cuda.is_available() is False); run it on a machine "
              "with a GPU and a CUDA build of torch", file=sys.stderr)
        return 2
    folder = Path(args.data)
    if not (folder / "train.de.gz").is_file():
        print(f"gpu-check: error: Multi30k not found in {folder} (train.de.gz ...); pass --data DIR", file=sys.stderr)
        return 2
    tol = args.tol if args.tol is not None else (0.02 if args.precision == "fp32" else 0.05)
    print(f"gpu-check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version()} (enabled: {torch.backends.cudnn.enabled}), "
          f"{torch.get_num_threads()} CPU threads; {args.steps} updates, {args.precision}", flush=True)
    with tempfile.TemporaryDirectory(prefix="nmt-gpu-check-") as tmp:
        data = multi30k(folder, Path(tmp) / "cache")
        timings = {}
        curves = {}
        for device, precision in (("cuda", args.precision), ("cpu", "fp32")):
            start = time.monotonic()
            curves[device] = run(data, Path(tmp) / device, device, args.steps, precision)
            timings[device] = time.monotonic() - start
        decoding = decode_rows(Path(tmp) / "cuda" / "best.pt", data)
    lines = compare(curves["cpu"], curves["cuda"], tol)
    print("\n".join(lines + decoding))
    rate = {d: sum(r["tgt_tok_s"] for r in c[1:]) / max(len(c) - 1, 1) for d, c in curves.items()}  # skip warm-up
    print(f"target tokens/s: gpu {rate['cuda']:,.0f}  cpu {rate['cpu']:,.0f}  (x{rate['cuda'] / rate['cpu']:.1f}); "
          f"wall time incl. data and validation: gpu {timings['cuda']:.0f} s, cpu {timings['cpu']:.0f} s")
    first, last = curves["cuda"][0]["loss"], curves["cuda"][-1]["loss"]
    failed = [line for line in lines if line.startswith("FAIL")]
    if failed or not last < first:
        print(f"gpu-check: FAILED: {len(failed)} of {len(lines)} windows beyond rel {tol}; "
              f"gpu loss {first:.3f} -> {last:.3f}", file=sys.stderr)
        return 1
    print(f"gpu-check: OK: the GPU loss curve follows the CPU's within rel {tol} ({first:.3f} -> {last:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
