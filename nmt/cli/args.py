"""The command line before Hydra reads it: values of string keys (file names, sentences) quoted, so that any
name a shell can pass survives Hydra's override grammar (parentheses, commas, brackets, equals signs, spaces,
quotes); and the short flags of the common keys (``-c RUN -i IN -o OUT``)."""

from __future__ import annotations

import dataclasses
import re
import typing

# short flags -> keys, for every command that has the key
SHORT_FLAGS = {"-c": "checkpoint", "-i": "input", "-o": "output", "-r": "run"}


def string_keys(schema: type, prefix: str = "") -> set[str]:
    """The dotted keys of ``schema`` (a config dataclass, nested ones included) whose values are strings."""
    keys = set()
    for name, kind in typing.get_type_hints(schema).items():
        if name not in {f.name for f in dataclasses.fields(schema)}:
            continue
        if dataclasses.is_dataclass(kind):
            keys |= string_keys(kind, f"{prefix}{name}.")
        elif kind is str or (typing.get_origin(kind) in (typing.Union, getattr(__import__("types"), "UnionType", None))
                             and str in typing.get_args(kind)):
            keys.add(prefix + name)
    return keys


def quote_value(arg: str, keys: set[str]) -> str:
    """``key=any text`` as a quoted Hydra override when ``key`` is one of ``keys``, taken literally (``${`` too);
    other arguments, ``null`` and values already in quotes are returned as they are."""
    name, sep, value = arg.partition("=")
    if not sep or name not in keys or value == "null" or (len(value) >= 2 and value[0] == value[-1]
                                                          and value[0] in "'\""):
        return arg
    # Hydra's quoted strings: a quote and an interpolation start "${" are escaped by a backslash, and
    # backslashes are doubled only where they precede one of those or end the string
    escaped = re.sub(r"(\\*)('|\$\{|$)", lambda m: m.group(1) * 2 + ("\\" + m.group(2) if m.group(2) else ""),
                     value)
    return f"{name}='{escaped}'"


def expand_short_flags(argv: list[str], keys: set[str]) -> list[str]:
    """``-c RUN`` -> ``checkpoint=RUN`` (and ``-c=RUN``), for the keys this command has; ``-i -`` is stdin."""
    out, i = [], 0
    while i < len(argv):
        flag, eq, value = argv[i].partition("=")
        if flag in SHORT_FLAGS and SHORT_FLAGS[flag] in keys:
            if not eq:
                if i + 1 >= len(argv):
                    out.append(argv[i])  # left for Hydra to refuse
                    break
                value, i = argv[i + 1], i + 1
            out.append(f"{SHORT_FLAGS[flag]}={value}")
        else:
            out.append(argv[i])
        i += 1
    return out


def prepare_argv(command: str, argv: list[str], schema: type) -> list[str]:
    """The command line as Hydra should read it: ``nmt plot KIND`` as ``kind=KIND``, short flags expanded, string
    values quoted."""
    if command == "plot" and argv and "=" not in argv[0] and not argv[0].startswith("-"):
        argv = [f"kind={argv[0]}", *argv[1:]]  # `nmt plot attention ...` means kind=attention
    keys = string_keys(schema)
    return [quote_value(a, keys) for a in expand_short_flags(argv, keys)]
