"""Tests for :mod:`nmt.cli.args` and :mod:`nmt.cli.help`, and the command line a new user meets: any file name,
short flags, --version, per-command help, shell completion, a --multirun typo."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from test_cli import _env, last_line, nmt

from nmt.cli.args import prepare_argv, string_keys
from nmt.cli.main import main
from nmt.config import Config, DataConfig, ModelConfig, PlotConfig, TrainConfig, TranslateConfig

# names a shell passes without trouble and Hydra's override grammar does not: parentheses, commas, equals signs,
# brackets, spaces, both quotes, an interpolation, a backslash and non-ASCII letters
AWKWARD = ["data(1).xx", "a,b.xx", "x=y.xx", "v[2].xx", "with space.xx", "it's.xx", 'say "hi".xx', "${x}.xx",
           "back\\slash.xx", "ñandú.xx"]


def test_string_keys_are_found_in_nested_configs() -> None:
    assert string_keys(TranslateConfig) == {"checkpoint", "input", "output", "prefix", "threads", "device",
                                              "constraints", "glossary", "tgt_lang"}
    keys = string_keys(Config)
    assert {"data.path", "data.local_dir", "name", "run_dir"} <= keys
    assert not keys & {"train.lr", "model.arch", "train.resume"}  # numbers, choices and flags are not quoted


def test_values_are_quoted_and_short_flags_expanded() -> None:
    argv = prepare_argv("translate", ["-c", "runs/x", "-i=a,b.xx", "decode=beam5", "output=null", "input='q'"],
                        TranslateConfig)
    assert argv == ["checkpoint='runs/x'", "input='a,b.xx'", "decode=beam5", "output=null", "input='q'"]
    assert prepare_argv("plot", ["gates", "sentence=it's"], PlotConfig) == ["kind=gates", "sentence='it\\'s'"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, corpus_writer) -> Path:
    from nmt.training.train import train

    tmp = tmp_path_factory.mktemp("awkward")
    data = replace(DataConfig(), name="tiny", format="text", path=str(corpus_writer(tmp / "corpus")), src_lang="xx",
                   tgt_lang="yy", vocab_size=40, cache_dir=str(tmp / "cache"))
    model = replace(ModelConfig(), emb_dim=8, hidden_dim=12, maxout_dim=6)
    tc = replace(TrainConfig(), max_steps=2, eval_every=2, batch_tokens=400, tensorboard=False, keep_last=0)
    train(Config(data=data, model=model, train=tc, name="tiny", run_dir=str(tmp / "run")))
    return tmp / "run"


@pytest.mark.parametrize("name", AWKWARD)
def test_any_file_name_works_as_input_and_output(tiny_run: Path, tmp_path: Path, name: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path(name).write_text("ka lo\n\nmi ne ru\n", encoding="utf-8")
    main(["translate", f"checkpoint={tiny_run}", f"input={name}", f"output=out {name}"])
    out = Path(f"out {name}").read_text(encoding="utf-8").split("\n")
    assert len(out) == 4 and out[1] == "" and out[0] and out[2]  # one line per line, the empty one empty


def test_short_flags_translate(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("in.xx").write_text("ka lo\n", encoding="utf-8")
    main(["translate", "-c", str(tiny_run), "-i", "in.xx", "-o", "out.yy"])
    assert Path("out.yy").read_text(encoding="utf-8").strip()


def test_version(tmp_path: Path) -> None:
    out = nmt("--version", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("nmt 0.") and "torch" in out.stdout


def test_help_lists_only_the_commands_groups_with_comments(tmp_path: Path) -> None:
    out = nmt("translate", "--help", cwd=tmp_path)
    assert out.returncode == 0
    assert "decode      beam5, greedy, sample   (default: greedy)" in out.stdout
    assert "model" not in out.stdout.split("Keys")[0]  # translate takes no model group
    assert "checkpoint: ???             # a checkpoint file" in out.stdout  # each key with its comment
    train = nmt("train", "-h", cwd=tmp_path).stdout
    for group in ("data", "model", "train", "experiment"):
        assert f"\n  {group} " in train
    assert "# optimiser" in train.lower() or "optimizer:" in train


def test_shell_completion_script_and_queries(tmp_path: Path) -> None:
    script = nmt("--shell-completion", "install=bash", cwd=tmp_path)
    assert script.returncode == 0 and "-sc query=bash" in script.stdout
    assert script.stdout.rstrip().endswith("hydra_bash_completion nmt")

    def query(line: str) -> str:
        env = {**_env(tmp_path), "COMP_LINE": line, "COMP_POINT": str(len(line))}
        out = subprocess.run([sys.executable, "-m", "nmt", "-sc", "query=bash"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert query("nmt tra").split() == ["train", "translate"]
    assert query("nmt ev").split() == ["evaluate"]
    assert "decode=" in query("nmt translate dec")
    assert "model=" in query("nmt train mod")


def test_multirun_typo_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    out = nmt("train", "--multirun", "train.max_updates=1,2", cwd=tmp_path)
    assert out.returncode == 2
    assert last_line(out.stderr).startswith("nmt train: error: bad command line:") and "max_updates" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "multirun").exists()
    assert not os.listdir(tmp_path)


def test_a_refused_run_leaves_nothing_and_an_empty_test_split_is_refused(tmp_path: Path, corpus_writer) -> None:
    from test_cli import train_args

    corpus = corpus_writer(tmp_path / "corpus")
    (corpus / "test.yy").write_bytes(b"")
    (corpus / "test.xx").write_bytes(b"")
    before = sorted(p.name for p in tmp_path.iterdir())
    out = nmt(*[a for a in train_args(corpus, tmp_path / "runs" / "r", tmp_path / "cache")], cwd=tmp_path)
    assert out.returncode == 2 and "empty corpus file" in last_line(out.stderr) and "test.xx" in last_line(out.stderr)
    after = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("hf-"))  # the test's own caches
    assert after == before  # no runs/ folder, no log file


@pytest.mark.parametrize(("argv", "expected"), [
    (["evaluate", "checkpoint=x", "splits=[valid]"], "Invalid value 'valid', expected one of [train, dev, test]"),
    (["train", "train.optimizer=sgd"], "Invalid value 'sgd', expected one of [adam, adadelta]"),
    (["translate", "checkpoint=x", "decode.method=nucleus"],
     "Invalid value 'nucleus', expected one of [greedy, beam, sample]"),
])
def test_a_bad_choice_is_one_line_naming_the_allowed_values(tmp_path: Path, argv: list[str], expected: str) -> None:
    out = nmt(*argv, cwd=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and expected in out.stderr
