"""A small name -> object registry.

Everything a user picks by name on the command line (``--netG``, ``--norm``, ``--gan_mode`` ...)
resolves through one of these, so ``--help`` lists exactly what exists and an unknown name is
an error that lists the valid ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar
from util.errors import OptionError

T = TypeVar("T")


class UnknownNameError(OptionError):
    """Raised for a name that no registry entry answers to."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    obj: T
    help: str = ""
    aliases: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    def __init__(self, option: str) -> None:
        # The command-line option this registry backs, used in error messages.
        self.option = option
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, obj: T, help: str = "", aliases: tuple[str, ...] = (), **meta: Any) -> T:
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.option}: '{name}' is registered twice")
        self._entries[name] = Entry(name, obj, help, tuple(aliases), dict(meta))
        for alias in aliases:
            self._aliases[alias] = name
        return obj

    def register(self, name: str, help: str = "", aliases: tuple[str, ...] = (),
                 **meta: Any) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            return self.add(name, obj, help=help, aliases=aliases, **meta)
        return decorator

    def canonical(self, name: str) -> str:
        name = self._aliases.get(name, name)
        if name not in self._entries:
            raise UnknownNameError(
                f"unknown {self.option} '{name}'; choose from: {', '.join(self.names())}")
        return name

    def entry(self, name: str) -> Entry[T]:
        return self._entries[self.canonical(name)]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def names(self) -> list[str]:
        return list(self._entries)

    def choices(self) -> list[str]:
        """Canonical names and aliases: what argparse accepts."""
        return list(self._entries) + list(self._aliases)

    def help_text(self) -> str:
        return "; ".join(f"{e.name}: {e.help}" if e.help else e.name for e in self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())
