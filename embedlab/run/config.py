"""Where a run's models run (`settings.engine`): checked here, read by the runner."""

from __future__ import annotations

from typing import Any

from embedlab.errors import ConfigError

ENGINES: tuple[str, ...] = ("local", "ray")  # where models run: worker processes here, or a Ray cluster


def check_engine(engine: Any, ray_address: Any, where: str) -> None:
    """`settings.engine` is one of ENGINES and `settings.ray_address` a string or unset
    (and only set with engine "ray"); `where` names the file or object in errors."""
    if engine not in ENGINES:
        raise ConfigError(f"{where}.engine: expected one of {list(ENGINES)}, got {engine!r}")
    if ray_address is not None and not (isinstance(ray_address, str) and ray_address.strip()):
        raise ConfigError(
            f"{where}.ray_address: expected an address such as 10.0.0.5:6379, ray://head:10001 or auto, got "
            f"{ray_address!r}"
        )
    if ray_address is not None and engine != "ray":
        raise ConfigError(f"{where}.ray_address is set but engine is {engine!r}: set engine: ray to use the cluster")
