"""Data-parallel training (nmt.training.distributed): device and backend choice, and the DDP equivalence under torchrun.

The equivalence test runs ``torchrun --nproc_per_node=2 -m nmt train`` with the gloo backend on the CPU and
checks that its weights equal those of one process whose every update sees the union of the two ranks' batches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from nmt import checkpoint
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.errors import NMTError
from nmt.runtime.allocator import IDEEP_CACHE, NO_SHAPE_CACHES, ONEDNN_CACHE, no_shape_caches
from nmt.training import distributed
from nmt.training.run import setup
from nmt.training.train import fit, update

REPO_ROOT = Path(__file__).resolve().parents[1]
needs_dist = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

# --------------------------------------------------------------------------- devices and backends


def test_cpu_device_and_gloo_backend() -> None:
    assert distributed.resolve_device("cpu") == torch.device("cpu")
    assert distributed.resolve_backend("auto", torch.device("cpu")) == "gloo"
    assert distributed.resolve_backend("auto", torch.device("cuda", 0)) == "nccl"


def test_nccl_without_gpu_is_a_one_line_error() -> None:
    with pytest.raises(NMTError, match="dist_backend=nccl needs CUDA GPUs"):
        distributed.resolve_backend("nccl", torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_cuda_without_gpu_is_a_one_line_error() -> None:
    assert distributed.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(NMTError, match="no CUDA GPU is visible"):
        distributed.resolve_device("cuda")


@pytest.mark.parametrize(("fn", "bad"), [(distributed.resolve_device, "tpu"),
                                         (lambda n: distributed.resolve_backend(n, torch.device("cpu")), "mpi")])
def test_unknown_device_or_backend(fn: Callable, bad: str) -> None:
    with pytest.raises(NMTError, match=bad):
        fn(bad)


def test_single_process_is_plain_training() -> None:
    one = distributed.Dist()
    assert not one.enabled and one.is_main
    assert one.loss_denominator(37) == 37 and isinstance(one.loss_denominator(37), int)  # bit-identical division
    assert one.from_main(("x", 1)) == ("x", 1)
    assert one.sum_loss_tokens(torch.tensor(2.5), 7) == (2.5, 7)
    model = torch.nn.Linear(2, 2)
    model.loss = lambda batch, ls: batch  # type: ignore[assignment]
    assert one.wrap(model)(3, 0.0) == 3  # no DDP wrapper around a single process


@pytest.mark.parametrize(("rank", "local_rank", "before"), [(0, 0, 0), (8, 0, 1), (1, 1, 2), (9, 1, 2)])
def test_preparation_runs_in_waves(monkeypatch: pytest.MonkeyPatch, rank: int, local_rank: int, before: int) -> None:
    """Rank 0 first, then each other node's first process, then the rest; every process meets two barriers."""
    calls: list[str] = []
    monkeypatch.setattr(distributed.Dist, "barrier", lambda self: calls.append("barrier"))
    with distributed.Dist(rank=rank, world_size=16, local_rank=local_rank).main_first():
        calls.append("work")
    assert calls.index("work") == before and calls.count("barrier") == 2


def test_single_process_without_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with distributed.session("cpu", "nccl") as dist:  # the backend is irrelevant without torchrun
        assert dist == distributed.Dist()


def test_bf16_on_cpu_trains_like_fp32(tiny_data_cfg: DataConfig, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """train.precision=bf16 on the CPU: the forward runs in bf16 (a weight's product comes out in bf16), the
    weights, gradients and optimizer stay fp32, and the loss falls about as far as in fp32 from the same start.
    oneDNN's and ideep's per-shape caches are switched off (nmt.runtime.allocator), unless the user set them."""
    for name in NO_SHAPE_CACHES:
        monkeypatch.setenv(name, "unset below")
        monkeypatch.delenv(name)  # restored to what it was after the test
    tc = replace(TrainConfig(), device="cpu", threads="1", batch_tokens=400, max_steps=80, eval_every=80, lr=3e-3,
                 keep_last=0, log_every=100, tensorboard=False)
    model_cfg = replace(ModelConfig(), emb_dim=16, hidden_dim=32, maxout_dim=8, attention_dim=16, dropout=0.0)
    losses = {}
    for precision in ("fp32", "bf16"):
        run = setup(Config(data=tiny_data_cfg, model=model_cfg, train=replace(tc, precision=precision),
                           run_dir=str(tmp_path / precision)))
        batch = run.batches.make(next(iter(run.batches.epoch(0))))
        with run.autocast:
            assert run.model.decoder.out(torch.zeros(1, model_cfg.maxout_dim)).dtype == getattr(torch, {
                "fp32": "float32", "bf16": "bfloat16"}[precision])
        first = run.model.loss(batch).item() / batch.n_tgt_tokens
        assert os.environ.get(ONEDNN_CACHE) == {"fp32": None, "bf16": "0"}[precision]
        assert os.environ.get(IDEEP_CACHE) == {"fp32": None, "bf16": "1"}[precision]
        fit(run)
        assert all(p.dtype == torch.float32 for p in run.model.parameters())
        moments = [v for st in run.opt.state.values() for v in st.values() if v.dim() > 0]
        assert moments and all(v.dtype == torch.float32 for v in moments)
        losses[precision] = (first, run.model.loss(batch).item() / batch.n_tgt_tokens)
    assert losses["bf16"][0] == pytest.approx(losses["fp32"][0], rel=1e-6)  # the same start
    assert losses["bf16"][1] < 0.85 * losses["bf16"][0]  # bf16 learned (the start is a uniform guess, ln 40)
    assert losses["bf16"][1] == pytest.approx(losses["fp32"][1], rel=0.1)  # and about as much as fp32


def test_a_primitive_cache_size_the_user_chose_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ONEDNN_CACHE, "256")
    monkeypatch.setenv(IDEEP_CACHE, "1024")
    assert not no_shape_caches() and os.environ[ONEDNN_CACHE] == "256" and os.environ[IDEEP_CACHE] == "1024"


def test_bf16_on_a_cpu_without_it_warns(tiny_data_cfg: DataConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("nmt.runtime.precision.cpu_has_bf16", lambda: False)
    for name, value in NO_SHAPE_CACHES.items():
        monkeypatch.setenv(name, value)  # what setup would set, undone after the test
    cfg = Config(data=tiny_data_cfg, train=replace(TrainConfig(), device="cpu", precision="bf16", tensorboard=False),
                 run_dir=str(tmp_path / "run"))
    with caplog.at_level("WARNING", logger="nmt.train"):
        setup(cfg)
    assert "this CPU has no native bf16" in caplog.text


# --------------------------------------------------------------------------- torchrun, 2 gloo processes

STEPS = 6
MODEL = {"emb_dim": 8, "hidden_dim": 16, "maxout_dim": 6, "dropout": 0.0}  # no dropout: same maths on both sides
TRAIN = {"batch_tokens": 150, "eval_every": 100, "log_every": 1, "threads": 1, "device": "cpu"}


def _config(data: DataConfig, run_dir: Path, **train_kw) -> Config:
    return Config(data=data, model=replace(ModelConfig(), **MODEL),
                  train=replace(TrainConfig(), **{**TRAIN, "max_steps": STEPS, **train_kw}), run_dir=str(run_dir))


class UnionOfPairs:
    """The batches of a BatchIterator merged two by two: what the two ranks of one DDP update see together."""

    def __init__(self, inner, n: int = 2) -> None:
        self.inner, self.n = inner, n

    def epoch(self, epoch: int) -> list[list[int]]:
        b = self.inner.epoch(epoch)
        return [sum(b[i: i + self.n], []) for i in range(0, len(b) - len(b) % self.n, self.n)]

    def make(self, indices):
        return self.inner.make(indices)


def torchrun(data: DataConfig, run_dir: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node=2 -m nmt train`` on ``data`` with this file's settings."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": os.environ[
        "HF_DATASETS_CACHE"], "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    args = ["data=files", f"data.path={data.path}", "data.src_lang=xx", "data.tgt_lang=yy",
            f"data.vocab_size={data.vocab_size}", f"data.cache_dir={data.cache_dir}", f"hydra.run.dir={run_dir}",
            *(f"model.{k}={v}" for k, v in MODEL.items()), *(f"train.{k}={v}" for k, v in TRAIN.items()), *extra]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "nmt", "train", *args]
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=240)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return checkpoint.read(run_dir / "last.pt")["model"]


@needs_dist
def test_two_gloo_ranks_equal_one_process_on_the_union(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    """2 ranks x 1 batch per update (torchrun, DDP) == 1 process x (both batches) per update, for 6 Adam updates
    with gradient clipping, across an epoch boundary; only rank 0 writes."""
    data = replace(tiny_data_cfg, vocab_size=40)
    ref = setup(_config(data, tmp_path / "one"))
    ref.batches = UnionOfPairs(ref.batches)
    per_epoch = len(ref.batches.epoch(0))
    assert 1 <= per_epoch < STEPS  # the runs cross an epoch boundary
    state = fit(ref)
    assert state.step == STEPS

    out = torchrun(data, tmp_path / "ddp", tmp_path, f"train.max_steps={STEPS}")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("done (max_steps)") == 1, out.stdout  # rank 1 prints nothing
    one, ddp = _weights(tmp_path / "one"), _weights(tmp_path / "ddp")
    assert one.keys() == ddp.keys()
    start = setup(_config(data, tmp_path / "init")).model.state_dict()
    for name, tensor in one.items():
        torch.testing.assert_close(ddp[name], tensor, atol=1e-5, rtol=1e-4, msg=name)
    assert any(not torch.allclose(start[k], one[k], atol=1e-4) for k in one)  # training moved the weights

    rows = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    ref_rows = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == list(range(1, STEPS + 1))  # one writer
    # the logged loss is the loss over both ranks' tokens, as the single process logs it over the union
    assert [r["loss"] for r in rows if r["kind"] == "train"] == pytest.approx(
        [r["loss"] for r in ref_rows if r["kind"] == "train"], rel=1e-4)
    ddp_ckpt = checkpoint.read(tmp_path / "ddp" / "last.pt")["train_state"]
    assert ddp_ckpt["step"] == STEPS and ddp_ckpt["epoch"] == state.epoch
    assert ddp_ckpt["batch_in_epoch"] == 2 * state.batch_in_epoch  # global batches: 2 per update


@needs_dist
@pytest.mark.slow
def test_two_gloo_ranks_resume(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    """Stopping a 2-rank run after 2 updates and resuming it to 6 gives the weights of 6 updates in one go."""
    data = replace(tiny_data_cfg, vocab_size=40)
    straight = torchrun(data, tmp_path / "straight", tmp_path, f"train.max_steps={STEPS}")
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = torchrun(data, tmp_path / "split", tmp_path, "train.max_steps=2")
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = torchrun(data, tmp_path / "split", tmp_path, f"train.max_steps={STEPS}", "train.resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert checkpoint.read(tmp_path / "split" / "last.pt")["step"] == STEPS
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "split")
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, atol=1e-6, rtol=1e-5, msg=name)


# --------------------------------------------------------------------------- gradient accumulation (train.accumulate)


def test_an_accumulated_update_equals_one_update_on_the_union(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    """accumulate=2 over batches A, B: the same loss, token count, gradients and weights as one update on A+B."""
    data = replace(tiny_data_cfg, vocab_size=40)
    acc = setup(_config(data, tmp_path / "acc", accumulate=2, tensorboard=False))
    one = setup(_config(data, tmp_path / "one", tensorboard=False))
    a, b = acc.batches.epoch(0)[:2]
    got = update(acc, acc.batches.make(a), acc.batches.make(b))
    want = update(one, one.batches.make(a + b))
    assert got.n_tokens == want.n_tokens == acc.batches.make(a).n_tgt_tokens + acc.batches.make(b).n_tgt_tokens
    assert got.loss == pytest.approx(want.loss, rel=1e-6) and got.grad_norm == pytest.approx(want.grad_norm, rel=1e-5)
    for (name, p), q in zip(acc.model.named_parameters(), one.model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-5, msg=name)  # not only Adam's sign(g)
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=name)
    assert acc.state.step == one.state.step == 1


def test_training_with_accumulate_2_equals_training_on_unions_of_pairs(tiny_data_cfg: DataConfig,
                                                                      tmp_path: Path) -> None:
    """6 updates of 2 micro-batches each (fit, across an epoch boundary) == 6 updates on the merged pairs; the
    metrics count the tokens of both micro-batches."""
    data = replace(tiny_data_cfg, vocab_size=40)
    ref = setup(_config(data, tmp_path / "one", tensorboard=False))
    ref.batches = UnionOfPairs(ref.batches)
    ref_state = fit(ref)
    state = fit(setup(_config(data, tmp_path / "acc", accumulate=2, tensorboard=False)))
    assert state.step == ref_state.step == STEPS and state.epoch == ref_state.epoch >= 1
    assert state.batch_in_epoch == 2 * ref_state.batch_in_epoch  # batches, 2 per update
    for name, tensor in _weights(tmp_path / "one").items():
        torch.testing.assert_close(_weights(tmp_path / "acc")[name], tensor, atol=1e-5, rtol=1e-4, msg=name)
    rows = {d: [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
            for d in ("one", "acc")}
    for key in ("loss", "tgt_tok_update"):
        assert [r[key] for r in rows["acc"] if r["kind"] == "train"] == pytest.approx(
            [r[key] for r in rows["one"] if r["kind"] == "train"], rel=1e-4), key


@needs_dist
@pytest.mark.slow
def test_two_gloo_ranks_accumulating_2_equal_one_process_on_unions_of_4(tiny_data_cfg: DataConfig,
                                                                         tmp_path: Path) -> None:
    """2 ranks x 2 micro-batches (DDP's no_sync on the first) == 1 process x (all 4 batches) per update."""
    data = replace(tiny_data_cfg, vocab_size=40)
    ref = setup(_config(data, tmp_path / "one", max_steps=3))
    ref.batches = UnionOfPairs(ref.batches, n=4)
    assert fit(ref).step == 3
    out = torchrun(data, tmp_path / "ddp", tmp_path, "train.max_steps=3", "train.accumulate=2")
    assert out.returncode == 0, out.stderr[-3000:]
    one, ddp = _weights(tmp_path / "one"), _weights(tmp_path / "ddp")
    for name, tensor in one.items():
        torch.testing.assert_close(ddp[name], tensor, atol=1e-5, rtol=1e-4, msg=name)


# --------------------------------------------------------------------------- a NaN on one rank only


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_with_nan(rank: int, port: int, cfg: Config, out: Path) -> None:
    """One of two gloo ranks; rank 1's loss is NaN at update 2, rank 0's never."""
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    with distributed.session("cpu", "gloo") as dist:
        run = setup(cfg, dist)
        real = run.model.loss

        def loss(batch, label_smoothing=0.0):
            value = real(batch, label_smoothing)
            return value * float("nan") if rank == 1 and run.state.step == 2 else value

        run.model.loss = loss
        state = fit(run)
    (out / f"rank{rank}.json").write_text(json.dumps({"step": state.step, "skipped": state.skipped}))


@needs_dist
def test_a_nan_on_one_rank_skips_the_update_on_every_rank(tiny_data_cfg: DataConfig, tmp_path: Path) -> None:
    """The skip decision rests on the loss summed over the ranks, so both skip update 2 and neither hangs."""
    cfg = _config(replace(tiny_data_cfg, vocab_size=40), tmp_path / "run", max_steps=3)
    ctx = torch.multiprocessing.spawn(_rank_with_nan, args=(_free_port(), cfg, tmp_path), nprocs=2, join=False)
    deadline = time.monotonic() + 180
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:  # ranks that disagree wait for each other forever
            for proc in ctx.processes:
                proc.kill()
            pytest.fail("the two ranks hung: they did not take the same skip decision")
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert reports == [{"step": 3, "skipped": 1}] * 2
    assert checkpoint.read(tmp_path / "run" / "last.pt")["train_state"]["skipped"] == 1
