"""Types of the compiled ``_label_keys`` (see _label_keys.pyx)."""

from typing import Any

def shapes(
    many: list[Any], seen: dict[tuple[object, ...], Any], names: tuple[str, ...]
) -> tuple[list[Any], list[int]]: ...
