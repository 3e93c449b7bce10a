"""The ``nmt`` command end to end (subprocesses), and every config group composed with Hydra's compose API."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import datasets
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from nmt import checkpoint
from nmt.cli.main import CONF_DIR, register_configs
from nmt.config import Config, DataConfig, ModelConfig, TrainConfig
from nmt.data.load import load_split
from nmt.data.prepare import prepare
from nmt.data.tokenizer import Tokenizer
from nmt.model.cho2014 import RNNEncoderDecoder

REPO_ROOT = Path(__file__).resolve().parents[1]
STEPS, EVAL_EVERY = 6, 3


def _env(tmp: Path) -> dict[str, str]:
    """The current environment with private Hugging Face caches, offline, and this checkout importable."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "HF_DATASETS_CACHE": str(tmp / "hf-datasets"), "HF_HOME": str(tmp / "hf-home"),
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": path}


def nmt(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m nmt ARGS`` in ``cwd`` (so stray outputs land there) and capture its output."""
    return subprocess.run([sys.executable, "-m", "nmt", *args], cwd=cwd, env=_env(cwd), capture_output=True,
                          text=True, timeout=300)


def train_args(corpus: Path, run_dir: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "train", "data=files", f"data.path={corpus}", "data.src_lang=xx", "data.tgt_lang=yy",
        "data.vocab_size=40", f"data.cache_dir={cache}",
        "model.emb_dim=8", "model.hidden_dim=16", "model.maxout_dim=6",
        f"train.max_steps={STEPS}", f"train.eval_every={EVAL_EVERY}", "train.batch_tokens=200",
        "train.log_every=2", "train.threads=1", f"hydra.run.dir={run_dir}", *extra,
    ]


def last_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    return lines[-1]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, corpus_writer: Callable[..., Path]) -> Path:
    """A folder holding the tiny corpus (``corpus/``) and the sentencepiece cache shared by these runs."""
    tmp = tmp_path_factory.mktemp("cli")
    corpus_writer(tmp / "corpus")
    return tmp


@pytest.fixture(scope="module")
def trained_run(work: Path) -> Path:
    """A run directory after ``nmt train`` for STEPS updates (shared: tests copy it before changing it)."""
    run = work / "run"
    out = nmt(*train_args(work / "corpus", run, work / "nmt-cache"), cwd=work)
    assert out.returncode == 0, out.stderr
    return run


def _copy_run(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


# --------------------------------------------------------------------------- training runs


def test_train_writes_run_directory(trained_run: Path) -> None:
    for name in ("best.pt", "last.pt", "metrics.jsonl", "config.json", "src.model", "tgt.model",
                 "config.yaml"):
        assert (trained_run / name).is_file(), name
    cfg = json.loads((trained_run / "config.json").read_text())
    assert cfg["run_dir"] == str(trained_run) and cfg["model"]["hidden_dim"] == 16
    assert OmegaConf.load(trained_run / "config.yaml").train.max_steps == STEPS
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "dev"] == [3, 6]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [2, 4, 6]
    last = checkpoint.read(trained_run / "last.pt")
    assert last["step"] == last["train_state"]["step"] == STEPS
    assert {"optimizer", "rng"} <= last.keys()
    best = checkpoint.read(trained_run)  # a run directory means its best.pt
    assert best["step"] in (3, 6) and "optimizer" not in best


def test_checkpoint_rebuilds_model_and_tokenizer(trained_run: Path) -> None:
    ckpt = checkpoint.read(trained_run / "best.pt")
    info = ckpt["model_info"]
    model = RNNEncoderDecoder(ModelConfig(**info["config"]), info["src_vocab"], info["tgt_vocab"])
    model.load_state_dict(ckpt["model"], strict=True)
    tok = Tokenizer(ckpt["tokenizer"]["src"], ckpt["tokenizer"]["tgt"])
    assert tok.tgt_vocab_size == info["tgt_vocab"] == 40
    assert tok.src_model == (trained_run / "src.model").read_bytes()


def test_resume_continues_from_last_step(trained_run: Path, tmp_path: Path, work: Path) -> None:
    run = _copy_run(trained_run, tmp_path)
    out = nmt(*train_args(work / "corpus", run, work / "nmt-cache", "train.resume=true", "train.max_steps=9"),
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "resumed" in out.stdout + out.stderr and "step 6" in out.stdout + out.stderr
    last = checkpoint.read(run / "last.pt")
    assert last["step"] == last["train_state"]["step"] == 9
    assert [h[0] for h in last["train_state"]["history"]] == [3, 6, 9]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "dev"] == [3, 6, 9]  # appended, not restarted


def test_second_run_in_same_directory_is_refused(trained_run: Path, tmp_path: Path, work: Path) -> None:
    run = _copy_run(trained_run, tmp_path)
    before = {name: (run / name).read_bytes() for name in ("last.pt", "config.yaml", "config.json")}
    out = nmt(*train_args(work / "corpus", run, work / "nmt-cache", "model.dropout=0.1"), cwd=tmp_path)
    assert out.returncode != 0
    line = last_line(out.stderr)
    assert "already holds a run" in line and "train.resume=true" in line and str(run) in line
    assert "Traceback" not in out.stderr
    assert {name: (run / name).read_bytes() for name in before} == before  # the refused run changed nothing
    assert not (run / ".hydra").exists()


# --------------------------------------------------------------------------- one-line errors


def _break_misaligned(corpus: Path) -> list[str]:
    lines = (corpus / "train.yy").read_text().splitlines()
    (corpus / "train.yy").write_text("\n".join(lines[:-2]) + "\n")
    return ["misaligned", "train.xx", "train.yy", f"has {len(lines)} lines", f"has {len(lines) - 2}"]


def _break_missing(corpus: Path) -> list[str]:
    (corpus / "dev.xx").unlink()
    return ["missing", "dev.xx"]


def _break_empty(corpus: Path) -> list[str]:
    (corpus / "train.xx").write_bytes(b"")
    return ["empty", "train.xx"]


@pytest.mark.parametrize("breakage", [_break_misaligned, _break_missing, _break_empty],
                         ids=["misaligned", "missing", "empty"])
def test_bad_corpus_fails_with_one_line(tmp_path: Path, corpus_writer: Callable[..., Path],
                                       breakage: Callable[[Path], list[str]]) -> None:
    corpus = corpus_writer(tmp_path / "corpus")
    expected = breakage(corpus)
    out = nmt(*train_args(corpus, tmp_path / "run", tmp_path / "nmt-cache"), cwd=tmp_path)
    assert out.returncode != 0
    line = last_line(out.stderr)
    assert line.startswith("nmt train: error:")
    for part in expected:
        assert part in line, (part, line)
    assert "Traceback" not in out.stderr


def test_config_typo_fails_at_composition(tmp_path: Path) -> None:
    out = nmt("train", "train.lrr=1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode != 0
    assert "lrr" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()  # nothing started


def test_missing_required_value(tmp_path: Path) -> None:
    out = nmt("train", "data=files", "data.src_lang=xx", "data.tgt_lang=yy", f"hydra.run.dir={tmp_path / 'r'}",
              cwd=tmp_path)
    assert out.returncode != 0
    assert "data.path" in last_line(out.stderr) and "Traceback" not in out.stderr


def test_help(tmp_path: Path) -> None:
    out = nmt("--help", cwd=tmp_path)
    assert out.returncode == 0 and "train" in out.stdout and "usage" in out.stdout.lower()
    out = nmt("train", "--help", cwd=tmp_path)
    assert out.returncode == 0
    for text in ("data: ", "model: ", "train: ", "max_steps", "multi30k", "accumulate", "init_from", "init_keep"):
        assert text in out.stdout, text
    assert not any(tmp_path.iterdir())  # --help writes no run directory


def test_unknown_command(tmp_path: Path) -> None:
    out = nmt("translate-everything", cwd=tmp_path)
    assert out.returncode != 0 and "translate-everything" in out.stderr


# --------------------------------------------------------------------------- Hydra compose API


def _group_options() -> list[tuple[str, str]]:
    conf = Path(CONF_DIR)
    return sorted((d.name, f.stem) for d in conf.iterdir() if d.is_dir() and d.name != "decode"
                  for f in d.glob("*.yaml"))


REQUIRED = {"files": ["data.path=corpus", "data.src_lang=xx", "data.tgt_lang=yy"]}


@pytest.fixture(scope="module")
def hydra_conf() -> Iterator[None]:
    register_configs()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        yield


def _compose(*overrides: str) -> Config:
    cfg = compose("train", overrides=["run_dir=/tmp/nmt-test-run", *overrides])
    return OmegaConf.to_object(cfg)


@pytest.mark.parametrize(("group", "option"), _group_options(), ids=lambda x: str(x))
def test_every_group_option_composes_to_typed_config(hydra_conf: None, group: str, option: str) -> None:
    cfg = _compose(f"{group}={option}", *REQUIRED.get(option if group == "data" else "", []))
    assert isinstance(cfg, Config)
    assert isinstance(cfg.data, DataConfig) and isinstance(cfg.model, ModelConfig)
    assert isinstance(cfg.train, TrainConfig)
    assert cfg.run_dir == "/tmp/nmt-test-run" and cfg.name == f"{cfg.data.name}-{cfg.model.name}"
    if group in ("data", "model", "train"):  # the group file's values arrive in the typed config
        node = getattr(cfg, group)
        for key, value in OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / group / f"{option}.yaml")).items():
            if value != "???":
                got = getattr(node, key)
                got = got if not hasattr(got, "__dataclass_fields__") else {
                    k: getattr(got, k) for k in got.__dataclass_fields__}
                assert got == value or list(got) == value, (key, got, value)


def test_experiment_overrides_groups(hydra_conf: None) -> None:
    cfg = _compose("experiment=cho2014")
    assert cfg.model.name == "cho2014" and cfg.model.hidden_dim == 1000
    assert cfg.train.optimizer == "adadelta"


def test_defaults_compose_without_overrides(hydra_conf: None) -> None:
    cfg = _compose()
    assert cfg.data.name == "bible-es-en" and cfg.model.name == "small" and cfg.train.optimizer == "adam"
    # the default group files only repeat (and comment) the dataclass defaults
    assert replace(cfg.train, adam_betas=tuple(cfg.train.adam_betas)) == TrainConfig()
    assert cfg.model == ModelConfig()


def test_files_without_path_is_missing(hydra_conf: None) -> None:
    with pytest.raises(MissingMandatoryValue):
        _compose("data=files")


def test_unknown_key_is_rejected(hydra_conf: None) -> None:
    with pytest.raises(Exception, match="lrr"):
        _compose("train.lrr=1")


# --------------------------------------------------------------------------- conf/experiment: published settings
# The WMT'14 presets read data laid out as the hub's wmt14 (config fr-en, rows {"translation": {"en", "fr"}}).

EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
EN = ["the cat sleeps .", "a dog runs .", "the house is red .", "birds fly south ."]
FR = ["le chat dort .", "un chien court .", "la maison est rouge .", "les oiseaux volent au sud ."]


def test_the_presets_exist() -> None:
    assert {"cho2014", "cho2014_wmt14_enfr", "bahdanau2015_rnnsearch50"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", [e for e in EXPERIMENTS if not e.startswith("multi30k_")])  # the papers' settings
def test_every_experiment_composes(hydra_conf: None, name: str) -> None:
    text = (Path(CONF_DIR) / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_\n"), name  # experiments override across groups
    cfg = _compose(f"experiment={name}")
    assert isinstance(cfg, Config)
    assert cfg.train.optimizer == "adadelta" and cfg.train.adadelta_eps == 1e-6 and cfg.train.adadelta_rho == 0.95
    assert not cfg.data.joint_vocab  # one vocabulary per language in both papers


@pytest.mark.parametrize(("name", "arch", "dropout", "smoothing", "minutes"), [
    ("multi30k_cho2014", "cho2014", 0.4, 0.1, 120), ("multi30k_rnnsearch", "rnnsearch", 0.4, 0.1, 110)])
def test_the_multi30k_presets_carry_the_measured_settings(hydra_conf: None, name: str, arch: str, dropout: float,
                                                          smoothing: float, minutes: int) -> None:
    text = (Path(CONF_DIR) / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    cfg = _compose(f"experiment={name}")
    assert (cfg.data.name, cfg.model.arch, cfg.model.dropout) == ("multi30k-de-en", arch, dropout)
    assert (cfg.train.label_smoothing, cfg.train.max_minutes, cfg.train.patience) == (smoothing, minutes, 0)
    assert cfg.model.tie_embeddings and cfg.train.average_last == 5  # both 2026-12-02 runs: tied, averaged


@pytest.mark.parametrize(("name", "arch", "hidden", "emb", "vocab", "sentences"), [
    ("cho2014_wmt14_enfr", "cho2014", 1000, 100, 15000, 64),
    ("bahdanau2015_rnnsearch50", "rnnsearch", 1000, 620, 30000, 80),
])
def test_wmt14_presets_hold_the_papers_settings(hydra_conf: None, name: str, arch: str, hidden: int, emb: int,
                                                vocab: int, sentences: int) -> None:
    cfg = _compose(f"experiment={name}")
    d, m, t = cfg.data, cfg.model, cfg.train
    assert (d.format, d.hub_name, d.hub_config, d.src_lang, d.tgt_lang) == ("hub", "wmt/wmt14", "fr-en", "en", "fr")
    assert (d.splits.train, d.splits.dev, d.splits.test) == ("train", "validation", "test")
    assert (d.vocab_size, d.max_len) == (vocab, 50)
    assert (m.arch, m.hidden_dim, m.emb_dim, m.maxout_dim) == (arch, hidden, emb, 500)
    assert t.batch_sentences == sentences and t.batch_tokens >= sentences * (d.max_len + 1) and t.clip_norm == 1.0
    assert cfg.name == f"wmt14-en-fr-{m.name}"


@pytest.fixture
def wmt14_copy(tmp_path: Path) -> Path:
    """A folder laid out like the hub repository wmt/wmt14: a README declaring config fr-en, parquet shards."""
    root = tmp_path / "wmt14"
    (root / "fr-en").mkdir(parents=True)
    for split, n in (("train", 4), ("validation", 3), ("test", 2)):
        rows = {"translation": [{"fr": f, "en": e} for e, f in zip(EN[:n], FR[:n], strict=True)]}
        features = datasets.Features({"translation": datasets.Translation(languages=["fr", "en"])})
        shard = root / "fr-en" / f"{split}-00000-of-00001.parquet"
        datasets.Dataset.from_dict(rows, features=features).to_parquet(shard)
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: fr-en\n  data_files:\n"
        + "".join(f"  - split: {s}\n    path: fr-en/{s}-*\n" for s in ("train", "validation", "test"))
        + "---\n")
    return root


def test_preset_reads_a_hub_shaped_wmt14_english_to_french(hydra_conf: None, wmt14_copy: Path,
                                                          tmp_path: Path) -> None:
    cfg = _compose("experiment=bahdanau2015_rnnsearch50", f"data.hub_name={wmt14_copy}")
    train, dev, test = (load_split(cfg.data, s) for s in ("train", "dev", "test"))
    assert list(zip(train["src"], train["tgt"], strict=True)) == list(zip(EN, FR, strict=True))  # en -> fr
    assert (len(dev), len(test)) == (3, 2)
    data = replace(cfg.data, vocab_size=40, cache_dir=str(tmp_path / "nmt-cache"))
    corpus = prepare(data)
    assert len(corpus.train) == 4 and corpus.dev_refs == FR[:3]
    assert corpus.tokenizer.decode_tgt(corpus.dev_tgt) == FR[:3]


@pytest.mark.parametrize("command", ["translate", "evaluate"])
@pytest.mark.parametrize("decode", ["greedy", "beam5"])
def test_decode_options_compose(hydra_conf: None, command: str, decode: str) -> None:
    cfg = OmegaConf.to_object(compose(command, overrides=["checkpoint=x", f"decode={decode}"]))
    assert cfg.decode.method == ("beam" if decode == "beam5" else "greedy")


def test_score_config_composes(hydra_conf: None) -> None:
    cfg = OmegaConf.to_object(compose("score", overrides=["checkpoint=x", "src=a", "tgt=b"]))
    assert cfg.src == "a" and cfg.rerank is False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_the_step_saves_and_exits_zero(work: Path, tmp_path: Path, sig: signal.Signals) -> None:
    run = tmp_path / "run"
    args = train_args(work / "corpus", run, work / "nmt-cache", "train.max_steps=100000", "train.eval_every=100000",
                      "train.max_epochs=100000")
    proc = subprocess.Popen([sys.executable, "-m", "nmt", *args], cwd=tmp_path, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"stopped by {sig.name}" in out and "train.resume=true" in out
    step = checkpoint.read(run / "last.pt")["train_state"]["step"]
    assert step >= 4 and f"at step {step};" in out
