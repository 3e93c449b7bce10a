"""An output path that names an input file, under any spelling or link, is refused before anything is opened
for writing (or a checkpoint loaded): one line, exit status 2, the input's bytes unchanged."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from test_bad_input import tiny_run

from nmt.cli.main import main
from nmt.data.load import refuse_overwrite
from nmt.errors import NMTError

TEXT = b"ka lo\nmi ne ru\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, corpus_writer) -> Path:
    return tiny_run(tmp_path_factory.mktemp("overwrite"), corpus_writer)


def _same_path(work: Path) -> str:
    return "f.xx"


def _dot(work: Path) -> str:
    return "./f.xx"


def _parent(work: Path) -> str:
    return f"../{work.name}/f.xx"


def _home(work: Path) -> str:
    return "~/f.xx"  # HOME is the work folder


def _symlink(work: Path) -> str:
    (work / "link.xx").symlink_to(work / "f.xx")
    return "link.xx"


def _hard_link(work: Path) -> str:
    os.link(work / "f.xx", work / "hard.xx")
    return "hard.xx"


SPELLINGS: dict[str, Callable[[Path], str]] = {"same": _same_path, "dot": _dot, "parent": _parent, "home": _home,
                                               "symlink": _symlink, "hard-link": _hard_link}


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory and HOME, holding the input f.xx."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "f.xx").write_bytes(TEXT)
    return tmp_path


def _refused(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("spelling", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_translate_refuses_its_input_as_output_before_loading(spelling: Callable[[Path], str], work: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    output = spelling(work)
    # no such checkpoint: the refusal comes before it is looked for
    err = _refused(["translate", "checkpoint=no-such-run", "input=f.xx", f"output={output}"], capsys)
    shown = (work / Path(output).expanduser()).resolve()
    assert err == (f"nmt translate: error: output={output} would overwrite input ({shown}): "
                   "give another output\n")
    assert (work / "f.xx").read_bytes() == TEXT


def test_translate_with_a_real_model_leaves_the_input_whole(run: Path, work: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    err = _refused(["translate", f"checkpoint={run}", "input=f.xx", "output=./f.xx"], capsys)
    assert "output=./f.xx would overwrite input" in err
    assert (work / "f.xx").read_bytes() == TEXT
    main(["translate", f"checkpoint={run}", "input=f.xx", "output=g.yy"])  # another output still works
    assert len((work / "g.yy").read_text(encoding="utf-8").splitlines()) == 2


def test_translate_refuses_the_checkpoint_as_output(run: Path, work: Path, capsys: pytest.CaptureFixture) -> None:
    before = (run / "best.pt").read_bytes()
    err = _refused(["translate", f"checkpoint={run / 'best.pt'}", "input=f.xx", f"output={run / 'best.pt'}"], capsys)
    assert "would overwrite checkpoint" in err
    assert (run / "best.pt").read_bytes() == before


@pytest.mark.parametrize(("key", "spelling"), [("src", "f.xx"), ("tgt", "./f.xx"), ("tsv", "link.xx"),
                                               ("nbest", "hard.xx")])
def test_score_refuses_an_input_as_output(key: str, spelling: str, work: Path, capsys: pytest.CaptureFixture) -> None:
    _symlink(work)
    _hard_link(work)
    inputs = {"src": "other.xx", key: "f.xx"}
    args = [f"{k}={v}" for k, v in inputs.items()]
    err = _refused(["score", "checkpoint=no-such-run", *args, f"output={spelling}"], capsys)
    assert err.startswith(f"nmt score: error: output={spelling} would overwrite {key} (")
    assert (work / "f.xx").read_bytes() == TEXT


def test_average_refuses_a_step_checkpoint_as_output(work: Path, capsys: pytest.CaptureFixture) -> None:
    (work / "r").mkdir()
    for step in (2, 4):
        (work / "r" / f"step-{step}.pt").write_bytes(b"weights %d" % step)
    err = _refused(["average", "run=r", "k=2", "output=r/./step-2.pt"], capsys)
    assert "output=r/./step-2.pt would overwrite run's step-2.pt" in err
    assert (work / "r" / "step-2.pt").read_bytes() == b"weights 2"


def test_plot_refuses_its_run_file_as_output(work: Path, capsys: pytest.CaptureFixture) -> None:
    (work / "metrics.jsonl").write_bytes(b"{}\n")
    err = _refused(["plot", "curves", "run=metrics.jsonl", "output=./metrics.jsonl"], capsys)
    assert "output=./metrics.jsonl would overwrite run" in err
    assert (work / "metrics.jsonl").read_bytes() == b"{}\n"


def test_stdout_unset_and_other_files_never_clash(work: Path) -> None:
    refuse_overwrite("-", {"input": "-"})
    refuse_overwrite(None, {"input": "f.xx"})
    refuse_overwrite("g.xx", {"input": "f.xx", "src": None, "tgt": "-"})
    with pytest.raises(NMTError, match=r"^output=new/a.txt would overwrite input"):  # neither exists yet
        refuse_overwrite("new/a.txt", {"input": "new/../new/a.txt"})
