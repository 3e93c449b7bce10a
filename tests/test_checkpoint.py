"""Tests for :mod:`nmt.checkpoint`: round trip, run directories, corrupt files and atomic writes."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest
import torch

from nmt import checkpoint
from nmt.errors import NMTError


@pytest.fixture
def payload() -> dict:
    torch.manual_seed(0)
    return {
        "model": {"w": torch.randn(3, 5), "b": torch.zeros(5)},
        "model_info": {"config": {"hidden_dim": 5}, "src_vocab": 11, "tgt_vocab": 13},
        "tokenizer": {"src": b"\x00spm-src", "tgt": b"\x00spm-tgt"},
        "step": 42,
        "train_state": {"best": None, "history": [[1, 2.5]]},
    }


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        if isinstance(v, dict):
            _same(v, b[k])
        elif isinstance(v, torch.Tensor):
            assert torch.equal(v, b[k]), k
        else:
            assert v == b[k], k


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_round_trip(tmp_path: Path, payload: dict) -> None:
    path = tmp_path / "sub" / "last.pt"  # the folder is created
    checkpoint.save(payload, path)
    got = checkpoint.read(path)
    assert got["format"] == checkpoint.FORMAT
    _same({k: v for k, v in got.items() if k != "format"}, payload)
    assert _leftovers(path.parent) == []


def test_save_replaces_existing(tmp_path: Path, payload: dict) -> None:
    path = tmp_path / "last.pt"
    checkpoint.save(payload, path)
    checkpoint.save({**payload, "step": 43}, path)
    assert checkpoint.read(str(path))["step"] == 43


def test_run_directory_resolves_to_best_then_last(tmp_path: Path, payload: dict) -> None:
    checkpoint.save({**payload, "step": 7}, tmp_path / "last.pt")
    assert checkpoint.read(tmp_path)["step"] == 7
    checkpoint.save({**payload, "step": 5}, tmp_path / "best.pt")
    assert checkpoint.read(tmp_path)["step"] == 5


def test_missing_checkpoint_and_empty_run_dir(tmp_path: Path) -> None:
    with pytest.raises(NMTError, match="nope.pt"):
        checkpoint.read(tmp_path / "nope.pt")
    with pytest.raises(NMTError, match="no checkpoint"):
        checkpoint.read(tmp_path)


@pytest.mark.parametrize("keep", [0, 1, 100, -20], ids=["empty", "one-byte", "head", "truncated"])
def test_truncated_file_is_an_nmt_error(tmp_path: Path, payload: dict, keep: int) -> None:
    good = tmp_path / "good.pt"
    checkpoint.save(payload, good)
    data = good.read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(data[:keep])
    with pytest.raises(NMTError, match=r"bad\.pt"):
        checkpoint.read(bad)


def test_garbage_file_is_an_nmt_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint\n" * 50)
    with pytest.raises(NMTError, match=r"bad\.pt"):
        checkpoint.read(bad)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_damaged_bytes_never_escape_as_other_errors(tmp_path: Path, payload: dict) -> None:
    """Flipped bytes anywhere: the file either still loads or fails with NMTError, never a raw traceback."""
    good = tmp_path / "good.pt"
    checkpoint.save(payload, good)
    data = good.read_bytes()
    rng = random.Random(0)
    bad = tmp_path / "bad.pt"
    for _ in range(40):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        bad.write_bytes(bytes(damaged))
        try:
            checkpoint.read(bad)
        except NMTError as err:
            assert "bad.pt" in str(err) and "\n" not in str(err)


@pytest.mark.parametrize("obj", [{"w": torch.ones(2)}, [1, 2, 3], torch.zeros(3)], ids=["dict", "list", "tensor"])
def test_torch_file_that_is_not_a_checkpoint(tmp_path: Path, obj: object) -> None:
    path = tmp_path / "weights.pt"
    torch.save(obj, path)
    with pytest.raises(NMTError, match="not an nmt checkpoint"):
        checkpoint.read(path)


class Unsafe:
    """Arbitrary pickled objects must not be loaded (weights_only)."""


def test_pickled_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "obj": Unsafe()}, path)
    with pytest.raises(NMTError, match=r"evil\.pt"):
        checkpoint.read(path)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "interrupt"])
def test_failure_mid_write_keeps_previous_checkpoint(tmp_path: Path, payload: dict,
                                                     monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    path = tmp_path / "last.pt"
    checkpoint.save(payload, path)
    before = path.read_bytes()

    real_save = torch.save

    def half_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial zip")  # some bytes reach the temporary file first
        raise error

    monkeypatch.setattr(checkpoint.torch, "save", half_save)
    expected = NMTError if isinstance(error, OSError) else type(error)
    with pytest.raises(expected) as err:
        checkpoint.save({**payload, "step": 99}, path)
    if expected is NMTError:
        assert "last.pt" in str(err.value) and "No space left" in str(err.value)
    monkeypatch.setattr(checkpoint.torch, "save", real_save)

    assert path.read_bytes() == before
    assert checkpoint.read(path)["step"] == 42
    assert _leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_average_is_the_mean_and_refuses_other_models(tmp_path: Path) -> None:
    from nmt.training.average import average_checkpoints

    t = torch

    def ck(value: float, info: str = "a") -> dict:
        return {"model": {"w": t.full((2, 3), value), "n": t.tensor([7])}, "model_info": {"x": info},
                "tokenizer": {"src": b"s", "tgt": b"t"}, "step": int(value)}

    paths = []
    for v in (1.0, 2.0, 6.0):
        paths.append(tmp_path / f"step-{int(v)}.pt")
        checkpoint.save(ck(v), paths[-1])
    avg = average_checkpoints(paths)
    assert t.allclose(avg["model"]["w"], t.full((2, 3), 3.0)) and avg["model"]["n"].item() == 7
    assert avg["step"] == 6 and checkpoint.step_checkpoints(tmp_path) == paths
    checkpoint.save(ck(4.0, info="b"), tmp_path / "step-9.pt")
    with pytest.raises(NMTError, match="step-1.pt comes from another model"):
        average_checkpoints([paths[0], tmp_path / "step-9.pt"])


# --------------------------------------------------------------------------- older formats

FIXTURES = Path(__file__).parent / "fixtures"


def _format1(arch: str, where: Path) -> Path:
    """The ``last.pt`` of a tiny run written by nmt before the module renames (tests/fixtures/README.md)."""
    where.mkdir(parents=True, exist_ok=True)
    path = where / "last.pt"
    path.write_bytes(gzip.decompress((FIXTURES / f"{arch}-format1.pt.gz").read_bytes()))
    return path


@pytest.mark.parametrize("arch", ["cho2014", "rnnsearch"])
def test_format_1_checkpoint_loads_and_computes_what_it_computed_then(arch: str, tmp_path: Path) -> None:
    from nmt.config import DecodeConfig
    from nmt.decoding.translate import Translator
    from nmt.evaluation.score import score_pairs

    path = _format1(arch, tmp_path)
    assert torch.load(path, weights_only=True)["format"] == "nmt-checkpoint-1"
    then = json.loads((FIXTURES / "format1-expected.json").read_text())[arch]
    t = Translator.open(str(path))
    assert [lp for lp, _ in score_pairs(t, then["src"], then["tgt"])] == pytest.approx(then["logprob"], abs=1e-4)
    old = {"min_len": 0}  # the decoding of that version (min_len came later)
    assert t.translate(then["src"], DecodeConfig(**old)) == then["greedy"]
    assert t.translate(then["src"], DecodeConfig(method="beam", beam=3, **old)) == then["beam3"]


def test_format_1_last_pt_resumes(tiny_data_cfg, tmp_path: Path) -> None:
    from dataclasses import replace

    from nmt.config import Config, ModelConfig, TrainConfig
    from nmt.training.train import train

    run_dir = tmp_path / "run"
    old = torch.load(_format1("rnnsearch", run_dir), weights_only=True)
    model = replace(ModelConfig(), **old["model_info"]["config"])
    tc = replace(TrainConfig(), max_steps=6, eval_every=2, batch_tokens=400, log_every=100, keep_last=1, resume=True)
    state = train(Config(data=tiny_data_cfg, model=model, train=tc, name="old", run_dir=str(run_dir)))
    assert state.step == 6 and state.history[0][0] == 2  # the old run's validations, then two more updates
    resumed = checkpoint.read(run_dir / "last.pt")
    assert resumed["format"] == checkpoint.FORMAT and "decoder.readout.from_state.weight" in resumed["model"]
    then = {checkpoint.renamed_key(k): v for k, v in old["model"].items()}
    assert then.keys() == resumed["model"].keys()
    assert any(not torch.equal(v, then[k]) for k, v in resumed["model"].items())  # the two updates moved weights


def test_a_newer_format_is_refused_naming_it(tmp_path: Path, payload: dict) -> None:
    path = tmp_path / "future.pt"
    torch.save({**payload, "format": "nmt-checkpoint-9"}, path)
    with pytest.raises(NMTError, match=r"format 'nmt-checkpoint-9', which this version \(nmt-checkpoint-2\)"):
        checkpoint.read(path)


@pytest.mark.parametrize("content", [b"hello\n", b"model weights, honest\n" * 100, b""], ids=["hello", "text", "empty"])
def test_a_text_file_is_not_a_checkpoint_and_no_torch_advice_is_given(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.pt"
    path.write_bytes(content)
    with pytest.raises(NMTError) as err:
        checkpoint.read(path)
    assert str(err.value) == f"{path} is not an nmt checkpoint (not a file written by torch.save)"
