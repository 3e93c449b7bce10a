"""Torch against onnxruntime: ``python -m nmt.bench.onnx --checkpoint RUN --src S [--ref R] [--export DIR]``.

Translates the source with torch fp32, torch int8 (``quantize=int8``) and onnxruntime (the checkpoint's ``nmt
export``: ``--export``, or one written to a temporary folder), each with greedy search and beam 5, the backends
interleaved within each repeat (torch, int8, onnxruntime, torch, ...) so that a busy neighbour slows all alike.
Prints a table and writes JSON: sentences/s (best repeat) and BLEU of each row (with ``--ref``), and the share
of greedy and beam outputs identical to torch fp32's. Every backend runs at ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import sacrebleu
import torch

from nmt.config import DecodeConfig, ExportConfig
from nmt.data.load import read_lines
from nmt.decoding.export import export
from nmt.decoding.ort import onnxruntime
from nmt.decoding.translate import Translator

DECODES = {"greedy": DecodeConfig(), "beam5": DecodeConfig(method="beam", beam=5)}


def _translators(checkpoint: str, folder: Path, threads: int) -> dict[str, Translator]:
    """The three backends, each at ``threads`` intra-op threads (onnxruntime takes torch's count when opened)."""
    torch.set_num_threads(threads)
    return {"torch": Translator.open(checkpoint, device="cpu"),
            "torch-int8": Translator.open(checkpoint, "int8", device="cpu"),
            "onnxruntime": Translator.open(str(folder), backend="onnxruntime")}


def measure(translators: dict[str, Translator], src: list[str], ref: list[str] | None, repeats: int
            ) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """The rows (backend, decode, sentences/s, seconds of each repeat, BLEU) and, per decode, the share of each
    backend's outputs identical to torch fp32's."""
    seconds: dict[tuple[str, str], list[float]] = {}
    outputs: dict[tuple[str, str], list[str]] = {}
    for _ in range(repeats):
        for decode, dc in DECODES.items():
            for name, t in translators.items():
                start = time.perf_counter()
                outputs[name, decode] = t.translate(src, dc)
                seconds.setdefault((name, decode), []).append(time.perf_counter() - start)
    rows = [{"backend": name, "decode": decode, "sentences_per_s": len(src) / max(min(s), 1e-9), "seconds": s,
             "bleu": None if ref is None else sacrebleu.corpus_bleu(outputs[name, decode], [ref]).score}
            for (name, decode), s in seconds.items()]
    same = {decode: {name: sum(a == b for a, b in zip(outputs[name, decode], outputs["torch", decode], strict=True))
                     / max(len(src), 1) for name in translators} for decode in DECODES}
    return rows, same


def _table(rows: list[dict[str, Any]], same: dict[str, dict[str, float]]) -> str:
    lines = [f"{'backend':<12} {'decode':<7} {'sent/s':>9} {'BLEU':>6} {'= torch':>8}"]
    for r in rows:
        bleu = "-" if r["bleu"] is None else f"{r['bleu']:.2f}"
        lines.append(f"{r['backend']:<12} {r['decode']:<7} {r['sentences_per_s']:>9.1f} {bleu:>6} "
                     f"{same[r['decode']][r['backend']]:>8.1%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="a checkpoint file or run directory")
    ap.add_argument("--src", required=True, help="source sentences, one a line")
    ap.add_argument("--ref", help="references, line-aligned: BLEU per row")
    ap.add_argument("--export", help="the checkpoint's `nmt export` directory; default: export to a temporary one")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best of them is reported")
    ap.add_argument("--output", default="runs/bench/onnx.json")
    args = ap.parse_args(argv)
    src = list(read_lines(Path(args.src)))
    ref = None if args.ref is None else list(read_lines(Path(args.ref)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.export) if args.export else export(ExportConfig(checkpoint=args.checkpoint,
                                                                           output=str(Path(tmp) / "onnx")))
        rows, same = measure(_translators(args.checkpoint, folder, args.threads), src, ref, args.repeats)
    report = {"checkpoint": args.checkpoint, "sentences": len(src), "threads": args.threads,
              "repeats": args.repeats, "torch": torch.__version__, "onnxruntime": onnxruntime().__version__,
              "rows": rows, "identical_greedy": same["greedy"], "identical_beam5": same["beam5"]}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(_table(rows, same))
    return report


if __name__ == "__main__":
    main()
