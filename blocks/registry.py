"""The registry of block types: name to class, and the catalogue the builder draws from.

Each module of the `blocks` package that defines block types ends with `BLOCKS = [...]`, naming
them; the default registry is every such list, so adding a block touches only its own file."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from functools import lru_cache

from blocks.base import AnyBlock


class UnknownBlockType(KeyError):
    """No block type of that name is registered."""


class Registry:
    """A set of block types, looked up by their dotted `type` name."""

    def __init__(self, block_types: Iterable[type[AnyBlock]] = ()) -> None:
        self._types: dict[str, type[AnyBlock]] = {}
        for block_type in block_types:
            self.register(block_type)

    def register(self, block_type: type[AnyBlock]) -> type[AnyBlock]:
        """Add a block type; a second type with the same name is a programming error."""
        if block_type.type in self._types:
            raise ValueError(f"block type {block_type.type!r} is registered twice")
        self._types[block_type.type] = block_type
        return block_type

    def get(self, name: str) -> type[AnyBlock]:
        """The block type called `name`; raises UnknownBlockType."""
        try:
            return self._types[name]
        except KeyError:
            raise UnknownBlockType(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[type[AnyBlock]]:
        return iter(sorted(self._types.values(), key=lambda b: b.type))

    def names(self) -> list[str]:
        """Every registered type name, sorted."""
        return sorted(self._types)

    def extended(self, *block_types: type[AnyBlock]) -> Registry:
        """A copy of this registry with more block types (for tests and plug-ins)."""
        return Registry([*self._types.values(), *block_types])


@lru_cache
def default_registry() -> Registry:
    """Every block type that ships with Mantle: the `BLOCKS` list each module of this package ends
    with (a plug-in module lists its own the same way, see `load_registry`)."""
    import blocks

    found: list[type[AnyBlock]] = []
    for module_info in sorted(pkgutil.iter_modules(blocks.__path__), key=lambda m: m.name):
        found.extend(getattr(importlib.import_module(f"blocks.{module_info.name}"), "BLOCKS", ()))
    return Registry(found)


@lru_cache
def load_registry(plugins: tuple[str, ...] = ()) -> Registry:
    """The default registry plus the block types of plug-in modules (each lists them in `BLOCKS`)."""
    if not plugins:
        return default_registry()
    extra: list[type[AnyBlock]] = []
    for module_name in plugins:
        module = importlib.import_module(module_name)
        extra.extend(module.BLOCKS)
    return default_registry().extended(*extra)
