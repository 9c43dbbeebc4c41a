"""Settings from the reviewed repository: ``pgolf.toml`` or the ``[tool.pgolf]`` table of
``pyproject.toml`` at its root (the nearest folder above the working directory that holds ``.git``,
else the working directory). The command line wins over the file, the file over the defaults.

Configuration is the reviewer's, never the entrant's: a file inside a record folder is never read
(a folder that holds ``submission.json`` or sits at ``records/<track>/<folder>`` is not a root), and
the audited folders are never searched. ``pgolf config`` prints every setting and where it came from.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.policy import DEFAULT_FAIL_ON, DEFAULT_FORMAT, DEFAULT_RULEBOOK, FAIL_ON, FORMATS, RULEBOOKS

CONFIG_FILES = ("pgolf.toml", "pyproject.toml")
_TABLE = re.compile(r"^\s*\[\s*tool\.pgolf\s*[\].]", re.M)  # a [tool.pgolf] (or [tool.pgolf.x]) table header
MAX_CONFIG_BYTES = 1_000_000
DEFAULT = "default"
COMMAND_LINE = "command line"


class ConfigError(ValueError):
    """A bad configuration file; the message names the file and the problem in one line."""


@dataclass(frozen=True)
class Setting:
    key: str  # as written in the file (kebab-case)
    kind: str  # "choice" | "list" | "int" | "float" | "path" | "bool"
    default: Any
    choices: tuple[str, ...] = ()
    help: str = ""


SETTINGS: dict[str, Setting] = {s.key: s for s in (
    Setting("format", "choice", DEFAULT_FORMAT, FORMATS, "report format"),
    Setting("fail-on", "choice", DEFAULT_FAIL_ON, FAIL_ON, "exit 1 at or above this severity"),
    Setting("rulebook", "choice", DEFAULT_RULEBOOK, tuple(RULEBOOKS), "dated rulebook"),
    Setting("select", "list", [], help="rules to run (ids, codes, code prefixes, families)"),
    Setting("extend-select", "list", [], help="rules added to the selection"),
    Setting("ignore", "list", [], help="rules left out"),
    Setting("waivers", "path", None, help="reviewed waiver file (else pgolf-waivers.toml if present)"),
    Setting("jobs", "int", 1, help="parallel worker processes (at least 1)"),
    Setting("timeout", "float", None, help="per-folder time limit in seconds (else 120, or PGOLF_FOLDER_TIMEOUT)"),
    Setting("show-info", "bool", False, help="show info findings in github and markdown output"),
)}


@dataclass
class Config:
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    file: Path | None = None  # the file read, if any
    root: Path | None = None

    def get(self, key: str) -> Any:
        return self.values.get(key, SETTINGS[key].default)

    def source(self, key: str) -> str:
        return self.sources.get(key, DEFAULT)

    def override(self, key: str, value: Any) -> None:
        """A value given on the command line (None / empty means "not given")."""
        if value is None or (isinstance(value, (list, tuple)) and not value):
            return
        self.values[key] = list(value) if isinstance(value, (list, tuple)) else value
        self.sources[key] = COMMAND_LINE


    def replace(self, key: str, value: Any) -> None:
        """A command-line value that replaces the file's even when empty (``--select`` resets the selection)."""
        self.values[key] = value
        self.sources[key] = COMMAND_LINE


def repo_root(start: Path | None = None) -> Path:
    """The reviewed repository's root: the nearest folder at or above ``start`` holding ``.git``."""
    start = (start or Path.cwd()).absolute()
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return start


def _is_record_folder(d: Path) -> bool:
    return (d / "submission.json").exists() or (d.parent.parent.name == "records" and d.parent.name.startswith("track"))


def find_file(root: Path) -> Path | None:
    """pgolf.toml, else a pyproject.toml with a [tool.pgolf] table, at the root; never in a record folder."""
    if _is_record_folder(root):
        return None
    for name in CONFIG_FILES:
        p = root / name
        if p.is_file() and not p.is_symlink():
            if name == "pyproject.toml" and not _TABLE.search(_read(p)):
                continue
            return p
    return None


def _read(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes; not a configuration file")
    return data.decode("utf-8", "replace")


def _toml(text: str, path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _convert(s: Setting, value: Any, where: str, base: Path) -> Any:
    def bad(want: str) -> ConfigError:
        return ConfigError(f"{where}: {s.key} must be {want}, not {value!r}")

    if s.kind == "choice":
        v = str(value).lower() if isinstance(value, str) else value
        if v not in s.choices:
            raise bad("one of " + ", ".join(s.choices))
        return v
    if s.kind == "list":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise bad("a list of strings")
        return list(value)
    if s.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad("a whole number of at least 1")
        return value
    if s.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise bad("a positive number of seconds")
        return float(value)
    if s.kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if s.kind == "path":
        if not isinstance(value, str) or not value:
            raise bad("a file path")
        p = Path(value)
        return str(p if p.is_absolute() else base / p)  # relative to the configuration file
    raise AssertionError(s.kind)


def parse(path: Path) -> tuple[dict[str, Any], str]:
    """The settings in one file and the label its values are attributed to."""
    doc = _toml(_read(path), path)
    if path.name == "pyproject.toml":
        table, label = doc.get("tool", {}).get("pgolf", {}), f"{path} [tool.pgolf]"
    else:
        table, label = doc, str(path)
    if not isinstance(table, dict):
        raise ConfigError(f"{label}: [tool.pgolf] must be a table")
    values = {}
    for raw_key, value in table.items():
        key = raw_key.replace("_", "-").lower()
        if key not in SETTINGS:
            near = difflib.get_close_matches(key, list(SETTINGS), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known: {', '.join(SETTINGS)}"
            raise ConfigError(f"{label}: unknown setting {raw_key!r}{hint}")
        values[key] = _convert(SETTINGS[key], value, label, path.parent)
    return values, label


def load(start: Path | None = None, explicit: Path | None = None) -> Config:
    """The configuration for a run from ``start`` (the working directory): ``explicit`` (``--config``)
    when given, else the repository root's file, else the defaults."""
    root = repo_root(start)
    if explicit is not None and not Path(explicit).is_file():
        raise ConfigError(f"--config {explicit}: no such file")
    path = Path(explicit) if explicit is not None else find_file(root)
    cfg = Config(root=root)
    if path is None:
        return cfg
    values, label = parse(Path(path))
    cfg.file = Path(path)
    cfg.values.update(values)
    cfg.sources.update({k: label for k in values})
    return cfg


def show(cfg: Config) -> str:
    """``pgolf config``: every setting, its effective value and where it came from."""
    lines = [f"configuration file: {cfg.file if cfg.file else 'none'} (repository root {cfg.root})"]
    width = max(len(k) for k in SETTINGS)
    for key, s in SETTINGS.items():
        value = cfg.get(key)
        if isinstance(value, list):
            shown = ", ".join(value) if value else "(none)"
        elif value is None:
            shown = "(none)"
        elif isinstance(value, bool):
            shown = "true" if value else "false"
        else:
            shown = str(value)
        lines.append(f"{key:<{width}}  {shown}  ({cfg.source(key)})")
    return "\n".join(lines) + "\n"


def as_json(cfg: Config) -> dict:
    return {"file": str(cfg.file) if cfg.file else None, "root": str(cfg.root),
            "settings": {k: {"value": cfg.get(k), "source": cfg.source(k)} for k in SETTINGS}}
