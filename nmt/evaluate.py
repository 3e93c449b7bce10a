"""``nmt evaluate``: translate test sets, score them with sacrebleu, write hypotheses and a JSON report."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import datasets
import torch

from nmt.config import DataConfig, EvaluateConfig
from nmt.data.load import check_parallel, load_split, read_lines, resolve_path
from nmt.errors import NMTError
from nmt.metrics import corpus_scores
from nmt.translate import Translator


def _sacrebleu_set(name: str, src_lang: str, tgt_lang: str) -> tuple[list[str], list[str]]:
    """Source and reference lines of a sacrebleu test set (downloaded once by sacrebleu; needs internet)."""
    from sacrebleu.utils import get_reference_files, get_source_file

    pair = f"{src_lang}-{tgt_lang}"
    try:
        src, refs = get_source_file(name, pair), get_reference_files(name, pair)
    except (Exception, SystemExit) as err:  # sacrebleu raises several types, or exits, when offline or unknown
        reason = str(err) or type(err).__name__
        raise NMTError(f"cannot get sacrebleu test set {name} ({pair}): {reason} (needs internet once)") from None
    return list(read_lines(Path(src))), list(read_lines(Path(refs[0])))


def _test_sets(ec: EvaluateConfig, data: DataConfig) -> dict[str, tuple[list[str], list[str]]]:
    sets: dict[str, tuple[list[str], list[str]]] = {}
    for split in ec.splits:
        ds = load_split(data, split)
        sets[split] = (ds["src"], ds["tgt"])
    if (ec.src is None) != (ec.ref is None):
        raise NMTError("give both src and ref files, or neither")
    if ec.src and ec.ref:
        src, ref = resolve_path(ec.src), resolve_path(ec.ref)
        for p in (src, ref):
            if not p.is_file():
                raise NMTError(f"file not found: {p}")
        check_parallel(src, ref)
        sets[src.name] = (list(read_lines(src)), list(read_lines(ref)))
    if ec.sacrebleu_set:
        sets[ec.sacrebleu_set] = _sacrebleu_set(ec.sacrebleu_set, data.src_lang, data.tgt_lang)
    if not sets:
        raise NMTError("nothing to evaluate: give splits, src/ref files or sacrebleu_set")
    for name, (src, refs) in sets.items():
        if len(src) != len(refs):
            raise NMTError(f"test set {name}: {len(src)} source sentences but {len(refs)} references")
    return sets


def evaluate(ec: EvaluateConfig) -> dict:
    """Translate and score every configured test set; returns the report that is also written as JSON."""
    if ec.threads > 0:
        torch.set_num_threads(ec.threads)
    datasets.disable_progress_bars()
    ckpt_path = resolve_path(ec.checkpoint)
    translator = Translator.load(str(ckpt_path), ec.quantize)
    data = DataConfig.from_dict(translator.config["data"])
    out_dir = Path(ec.out_dir) if ec.out_dir else (ckpt_path if ckpt_path.is_dir() else ckpt_path.parent) / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"checkpoint": str(ckpt_path), "step": translator.step, "quantize": ec.quantize,
              "decode": asdict(ec.decode), "sets": {}}
    for name, (src, refs) in _test_sets(ec, data).items():
        start = time.perf_counter()
        hyps = translator.translate(src, ec.decode, max_input_len=ec.max_input_len)
        seconds = time.perf_counter() - start
        (out_dir / f"{name}.{ec.decode.method}.hyp").write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
        scores = corpus_scores(hyps, refs, bootstrap=ec.bootstrap)
        report["sets"][name] = {**scores, "sentences": len(src), "seconds": round(seconds, 2),
                                "sentences_per_s": round(len(src) / max(seconds, 1e-9), 1)}
        ci = f" ± {scores['bleu']['ci95']}" if "ci95" in scores["bleu"] else ""
        print(f"{name}: BLEU {scores['bleu']['score']:.2f}{ci} | chrF {scores['chrf']['score']:.2f} | "
              f"TER {scores['ter']['score']:.2f} | {len(src)} sentences in {seconds:.1f} s", flush=True)
        print(f"  {scores['bleu']['signature']}", flush=True)
    path = out_dir / f"report.{ec.decode.method}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"hypotheses and {path.name} in {out_dir}", flush=True)
    return report
