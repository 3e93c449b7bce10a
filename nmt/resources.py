"""The files that ship with nmt: the configs and the embedded corpus. In an installed wheel they lie inside the
package (``nmt/conf``, ``nmt/corpus``); in a checkout, at its top level (``conf/``, ``data/bible-es-en``)."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
EMBEDDED = "embedded:"  # a data path naming a corpus that ships with nmt, e.g. embedded:bible-es-en


def _first_dir(*candidates: Path) -> Path:
    return next((p for p in candidates if p.is_dir()), candidates[-1])


def conf_dir() -> Path:
    """The folder of the YAML configs (conf/ in a checkout)."""
    return _first_dir(PACKAGE / "conf", PACKAGE.parent / "conf")


def embedded_corpus(name: str) -> Path:
    """The folder of the embedded corpus ``name`` (data/<name> in a checkout)."""
    return _first_dir(PACKAGE / "corpus" / name, PACKAGE.parent / "data" / name)
