"""``nmt COMMAND --help``: what the command does, the config groups it takes (and only those), and every key of
its config with the comment that explains it, read from the YAML files that ship with nmt."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def _groups(conf: Path, command: str) -> dict[str, str | None]:
    """The config groups of ``command``'s defaults list and their default option (None: no default)."""
    groups = {}
    for entry in OmegaConf.to_container(OmegaConf.load(conf / f"{command}.yaml")).get("defaults", []):
        if isinstance(entry, dict):
            (group, option), = entry.items()
            if not group.startswith("override ") and (conf / group).is_dir():
                groups[group] = option
    return groups


def _keys_text(path: Path, header: bool = True) -> str:
    """The commented keys of a YAML config: without its defaults list and Hydra's own settings (and without the
    comment lines at its top unless ``header``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    while not header and lines and lines[0].startswith("#"):
        lines.pop(0)
    out, skipping = [], False
    for line in lines:
        if line and not line[0].isspace() and not line.startswith("#"):
            skipping = line.split(":")[0] in ("defaults", "hydra")
        if not skipping:
            out.append(line)
    return "\n".join(out).strip("\n")


def verb_help(command: str, conf: Path) -> str:
    """The help text of ``nmt COMMAND``."""
    primary = conf / f"{command}.yaml"
    header = OmegaConf.load(primary).get("hydra", {}).get("help", {}).get("header", f"nmt {command}")
    parts = [header.rstrip(), ""]
    groups = _groups(conf, command)
    if groups:
        parts.append("Config groups (GROUP=OPTION; each option is a YAML file, shown below for the default):")
        for group, default in groups.items():
            options = ", ".join(sorted(p.stem for p in (conf / group).glob("*.yaml")))
            parts.append(f"  {group:<11} {options}   (default: {default or 'none'})")
        parts.append("")
    parts += [f"Keys (KEY=VALUE on the command line), from {primary}:", _keys_text(primary, header=False), ""]
    for group, default in groups.items():
        if default:
            parts += [f"{group}: {default} ({conf / group / f'{default}.yaml'}), as {group}.KEY=VALUE:",
                      _keys_text(conf / group / f"{default}.yaml"), ""]
    parts.append("Values that are file names or text may hold any character (nmt quotes them for Hydra). Short flags, "
                 "where the command has the key: -c CHECKPOINT, -i INPUT, -o OUTPUT, -r RUN. Hydra's own flags: "
                 "--hydra-help, --cfg job (print the composed config).")
    return "\n".join(parts)
