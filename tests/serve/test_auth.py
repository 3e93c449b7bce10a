"""nmt.serve.auth without a model: key files and variables (and their one-line errors, which never quote a key),
the sliding window on an injected clock, and the access-log filter. The routes with keys and limits are tested
in test_app.py."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from nmt.cli.main import main  # noqa: E402
from nmt.errors import ConfigValueError, NMTError  # noqa: E402
from nmt.serve.auth import Guard, Limits, RedactKeys, Window, _digest  # noqa: E402
from nmt.serve.config import ServeConfig  # noqa: E402

KEY = "k-7d1e-secret"


def _keys(tmp_path: Path, text: str) -> str:
    path = tmp_path / "keys.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_key_file_with_comments_and_limits_of_its_own(tmp_path: Path) -> None:
    path = _keys(tmp_path, f"# partners\n\n{KEY}\nother-key req_limit=5 char_limit=900  # a partner\n")
    guard = Guard.from_config(ServeConfig(checkpoint="x", api_keys=path, req_limit=60, char_limit=5000))
    assert guard.keys == {_digest(KEY): Limits(60, 5000), _digest("other-key"): Limits(5, 900)}


def test_keys_from_a_variable_and_a_file_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NMT_TEST_KEYS", f" {KEY}, env-only ,,")
    path = _keys(tmp_path, f"{KEY} req_limit=7\n")
    guard = Guard.from_config(ServeConfig(checkpoint="x", api_keys=path, api_keys_env="NMT_TEST_KEYS"))
    assert guard.keys == {_digest(KEY): Limits(7, 0), _digest("env-only"): Limits(0, 0)}  # the file's line wins
    assert Guard.from_config(ServeConfig(checkpoint="x")).keys is None  # no keys: open, limits per address


BAD_FILES = {
    "missing": (None, "api_keys={path}: no such file"),
    "empty": ("# only a comment\n\n", "api_keys={path} holds no keys"),
    "bad-limit": (f"{KEY}\n{KEY}-2 req_limit=-3\n", "api_keys={path} line 2: expected KEY [req_limit=N]"),
    "unknown-word": (f"{KEY} rate=9\n", "api_keys={path} line 1: expected KEY"),
    "twice": (f"{KEY}\n{KEY} req_limit=1\n", "api_keys={path} line 2: the key of an earlier line again"),
}


@pytest.mark.parametrize(("text", "expected"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_key_file_is_one_line_naming_it_never_the_key(tmp_path: Path, text: str | None, expected: str
                                                            ) -> None:
    path = _keys(tmp_path, text) if text is not None else str(tmp_path / "nowhere.txt")
    with pytest.raises(NMTError) as err:
        Guard.from_config(ServeConfig(checkpoint="x", api_keys=path))
    message = str(err.value)
    assert message.startswith(expected.format(path=path)) and "\n" not in message and KEY not in message


def test_a_missing_or_empty_variable_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NMT_TEST_KEYS", raising=False)
    with pytest.raises(NMTError, match="^api_keys_env=NMT_TEST_KEYS: no such environment variable$"):
        Guard.from_config(ServeConfig(checkpoint="x", api_keys_env="NMT_TEST_KEYS"))
    monkeypatch.setenv("NMT_TEST_KEYS", " , ")
    with pytest.raises(NMTError, match="^api_keys_env=NMT_TEST_KEYS holds no keys"):
        Guard.from_config(ServeConfig(checkpoint="x", api_keys_env="NMT_TEST_KEYS"))


@pytest.mark.parametrize("key", ["req_limit", "char_limit", "batch_linger_ms"])
def test_a_negative_limit_is_refused_with_its_name(key: str) -> None:
    with pytest.raises(ConfigValueError, match=f"^{key}=-1(.0)? is out of range: must be >= 0$"):
        ServeConfig(checkpoint="x", **{key: -1})


def test_the_command_refuses_a_missing_key_file_in_one_line_before_loading(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", f"checkpoint={tmp_path / 'no-run'}", f"api_keys={tmp_path / 'keys.txt'}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"nmt serve: error: api_keys={tmp_path / 'keys.txt'}: no such file")


def test_the_window_slides_and_says_when_there_is_room() -> None:
    now = [0.0]
    window = Window(lambda: now[0], span=60.0)
    assert window.spend("a", 1, 2) == 0 and window.spend("b", 2, 2) == 0  # each client has its own window
    now[0] = 30.0
    assert window.spend("a", 1, 2) == 0
    now[0] = 45.0
    assert window.spend("a", 1, 2) == pytest.approx(15.0)  # the spending at 0 leaves at 60
    assert window.spend("a", 3, 2) == math.inf  # never fits
    now[0] = 60.0
    assert window.spend("a", 1, 2) == 0  # the first left: room for one
    assert window.spend("a", 1, 2) == pytest.approx(30.0)


def test_access_log_lines_lose_their_keys() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, "h11_impl.py", 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "POST", f"/translate?q=ka&api_key={KEY}&target=yy", "1.1", 200),
                               None)
    assert RedactKeys().filter(record)
    line = record.getMessage()
    assert KEY not in line and "api_key=[redacted]&target=yy" in line
