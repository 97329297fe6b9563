"""One generic registry, instantiated once per kind of component.

Components register themselves where they are defined::

    @PATHS.register("kl", "kl_geodesic")
    class KLPath(SimplexPath): ...

and are looked up by string only (``PATHS.get("kl")``). Unknown names fail with the list
of known ones; a second registration of a taken name fails and names the first owner.
This module imports no component: the packages ``paths``, ``baselines`` and ``tasks``
import it (see :mod:`pathbench.engine.plugins` for how they and third-party plugins get loaded).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from pathbench.core.errors import ConfigError

T = TypeVar("T")


class DuplicateNameError(ConfigError):
    """A name (or alias) is registered twice in the same registry."""


class UnknownNameError(ConfigError, KeyError):
    """A lookup by a name nobody registered."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0])


#: what fills every registry before its first read (``import pathbench`` sets it to load_all); this
#: module imports no component, so the filling is handed in from above
_fill: Callable[[], None] | None = None


def fill_on_first_read(load: Callable[[], None]) -> None:
    """Run ``load`` once, before any registry is first read (looked up, listed, counted)."""
    global _fill
    _fill = load


def _filled() -> None:
    global _fill
    if _fill is not None:
        load, _fill = _fill, None  # before the call: the loading itself reads the registries
        load()


def _owner(obj: object) -> str:
    module = getattr(obj, "__module__", "?")
    return f"{module}.{getattr(obj, '__qualname__', repr(obj))}"


class Registry(Generic[T]):
    """Names (and aliases) → registered objects, for one ``kind`` of component."""

    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind, self.hint = kind, hint  # hint: appended to an unknown name's message
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """Decorator registering its target under ``name`` and ``aliases``."""

        def decorator(obj: T) -> T:
            self.add(name, obj, *aliases)
            return obj

        return decorator

    def add(self, name: str, obj: T, *aliases: str) -> None:
        for key in (name, *aliases):
            if key in self._entries or key in self._aliases:
                first = self._entries.get(key) or self._entries[self._aliases[key]]
                raise DuplicateNameError(
                    f"{self.kind} '{key}' is already registered (by {_owner(first)}); "
                    f"cannot register {_owner(obj)} under the same name"
                )
        self._entries[name] = obj
        for alias in aliases:
            self._aliases[alias] = name

    def get(self, name: str) -> T:
        _filled()
        canonical = self._aliases.get(name, name)
        if canonical not in self._entries:
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'; known: {', '.join(self.names()) or '(none)'}{self.hint}"
            )
        return self._entries[canonical]

    def build(self, name: str, **options: object):
        """Instantiate the registered class ``name``; bad options name the component, and an
        option its constructor does not take lists the ones it does."""
        cls = self.get(name)
        accepted = accepted_options(cls) if isinstance(cls, type) else None
        unknown = sorted(set(options) - accepted) if accepted is not None else []
        if unknown:
            raise ConfigError(f"unknown option '{unknown[0]}' for {self.kind} '{name}'; "
                              f"valid: {', '.join(sorted(accepted)) or '(none)'}")
        try:
            return cls(**options)
        except TypeError as err:  # an option the component does not take
            raise ConfigError(f"{self.kind} '{name}': {err}") from err
        except ConfigError as err:
            raise type(err)(f"{self.kind} '{name}': {err}") from err

    def canonical(self, name: str) -> str:
        """The registered name behind ``name`` (an alias or the name itself)."""
        self.get(name)
        return self._aliases.get(name, name)

    def names(self) -> list[str]:
        _filled()
        return sorted(self._entries)

    def aliases_of(self, name: str) -> list[str]:
        _filled()
        return sorted(a for a, n in self._aliases.items() if n == name)

    def __contains__(self, name: object) -> bool:
        _filled()
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        _filled()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


PATHS: Registry = Registry("path")
METHODS: Registry = Registry("method", " (a plugin's? load its module: --plugin MODULE, or plugins: [MODULE] "
                                          "in an experiment file)")
#: deprecated: the methods registry's old name (it holds every method, not only baselines)
BASELINES = METHODS
TASKS: Registry = Registry("task")
SCORERS: Registry = Registry("scorer")
#: named generation protocols (pathbench.engine.protocol registers kl-flow and plain)
PROTOCOLS: Registry = Registry("protocol")
#: training recipes, ``train.optimizer=<name>`` (pathbench.engine.recipes registers adamw, muon, kl-flow-muon)
RECIPES: Registry = Registry("training recipe")
#: live-curve sinks beside metrics.jsonl, ``train.logger=<name>`` (pathbench.engine.loggers)
LOGGERS: Registry = Registry("logger")

ALL: dict[str, Registry] = {
    "paths": PATHS,
    "methods": METHODS,
    "tasks": TASKS,
    "scorers": SCORERS,
    "protocols": PROTOCOLS,
    "recipes": RECIPES,
    "loggers": LOGGERS,
}


def accepted_options(cls: type) -> set[str] | None:
    """The keyword options a class's constructor takes, following ``**options`` up to its
    parents; None when some class in the chain takes anything (nothing to check against)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if klass is object or init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None if names else set()
