"""File helpers every stage may use: reading JSON with errors that name the file and line,
writing so that a reader never sees half a file or folder, and `${VAR}` / `${VAR:-default}`
in config files."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from embedlab.errors import ConfigError

# `${VAR}` or `${VAR:-default}` in a config string: group 1 the name, group 2 the default (None when absent)
ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_vars(value: Any, path: Path) -> Any:
    """Substitute `${VAR}` / `${VAR:-default}` in every string of a parsed YAML tree; an unset
    variable without a default is a ConfigError naming `path` and the variable."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{path}: environment variable {name!r} is not set and has no default (write ${{{name}:-default}})"
            )

        return ENV_PATTERN.sub(sub, value)
    if isinstance(value, list):
        return [expand_vars(v, path) for v in value]
    if isinstance(value, dict):
        return {k: expand_vars(v, path) for k, v in value.items()}
    return value


def read_json(path: Path) -> Any:
    """The JSON value in `path`; invalid JSON or text that is not UTF-8 raises ConfigError
    naming the file (and the line)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}: invalid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; expected a JSON file") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; {} when the file does not exist, ConfigError when it holds
    something else."""
    if not path.is_file():
        return {}
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def env_vars(text: str) -> list[tuple[str, str | None]]:
    """The `${VAR}` / `${VAR:-default}` references in `text`: (name, default or None)."""
    return [(m.group(1), m.group(2)) for m in ENV_PATTERN.finditer(text)]


def write_text(path: Path, text: str) -> None:
    """`text` written to a temporary file beside `path`, then renamed over it."""
    write_bytes(path, text.encode("utf-8"))


@functools.cache
def _file_mode() -> int:
    """The mode `open(path, "w")` would give a new file (0o666 less the umask), read once:
    mkstemp's temporary files are 0o600, which would hide results from a shared group."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_bytes(path: Path, data: bytes) -> None:
    """`data` written to a temporary file beside `path`, then renamed over it (with the mode
    the file had, or a new file's usual mode)."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else _file_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchmod(fh.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_folder(folder: Path, files: dict[str, bytes | Path]) -> None:
    """`files` (name -> bytes, or an existing file of the same store to hard-link, copied
    where links fail) written into a temporary folder two levels up (`<store>/.tmp/`, beside
    `<store>/<key[:2]>/<key>`), then renamed to `folder`, so a reader never sees half of it;
    when another process put the same folder first, theirs stays."""
    tmp = folder.parent.parent / ".tmp" / uuid.uuid4().hex
    tmp.mkdir(parents=True)
    try:
        for name, content in files.items():
            if isinstance(content, Path):
                try:
                    os.link(content, tmp / name)
                except OSError:
                    shutil.copyfile(content, tmp / name)
            else:
                (tmp / name).write_bytes(content)
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.rename(tmp, folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
