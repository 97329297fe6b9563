"""Loading the components that fill the registries.

Built-in packages (``pathbench.paths``, ``.baselines``, ``.tasks``) register on import. Third-party
code registers through the entry-point group ``pathbench.plugins`` (each entry point names
a module to import) or ``--plugin some.module`` on any CLI command.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points

from pathbench.core.errors import ConfigError

#: what registers the built-ins: the component packages, and the engine's protocols, training
#: recipes and live-curve loggers (imported by name: the engine does not import the components)
BUILTIN_PACKAGES = ("pathbench.paths", "pathbench.baselines", "pathbench.tasks", "pathbench.engine.protocol",
                    "pathbench.engine.recipes", "pathbench.engine.loggers")
ENTRY_POINT_GROUP = "pathbench.plugins"


class PluginError(ConfigError):
    """A plugin module that cannot be imported or registers badly."""


_loaded: set[str] = set()


def import_plugin(module: str) -> None:
    """Import ``module`` once; failures become a one-line :class:`PluginError`."""
    if module in _loaded:
        return
    try:
        importlib.import_module(module)
    except ConfigError as err:  # e.g. a duplicate registration inside the plugin
        raise PluginError(f"plugin '{module}' failed to register: {err}") from err
    except Exception as err:  # noqa: BLE001 - any import failure is reported the same way
        raise PluginError(
            f"plugin '{module}' failed to import: {type(err).__name__}: {err}"
        ) from err
    _loaded.add(module)


def load_all(extra: list[str] | tuple[str, ...] = ()) -> None:
    """Import the built-in packages, every entry-point plugin, then ``extra`` modules, and
    wrap every registered path as a method."""
    for package in BUILTIN_PACKAGES:
        import_plugin(package)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        import_plugin(ep.value.split(":")[0])
    _import_plugins(extra)
    _register_path_methods()


def load_plugins(modules: list[str] | tuple[str, ...], needed_by: str | None = None) -> None:
    """Import plugin ``modules`` (the ``--plugin`` option, an experiment file's ``plugins:``, or
    the ones a run folder records) and make their paths trainable methods. ``needed_by`` names
    what recorded them, so a missing module says which run needs it."""
    if modules:
        _import_plugins(modules, needed_by)
        _register_path_methods()


def _import_plugins(modules: list[str] | tuple[str, ...], needed_by: str | None = None) -> None:
    if modules and os.getcwd() not in sys.path:
        # a console script does not put the working directory on sys.path; a user's plugin
        # module next to their experiment should still be found
        sys.path.append(os.getcwd())
    for module in modules:
        try:
            import_plugin(module)
        except PluginError as err:
            if needed_by is None:
                raise
            raise PluginError(f"{needed_by} needs plugin module '{module}' (recorded when it was made), "
                              f"which cannot be loaded here: {err}; put it on PYTHONPATH") from err


def _register_path_methods() -> None:
    from pathbench.engine.methods import register_path_methods  # imports torch: not for --help

    register_path_methods()  # every path, plugin paths included, is a trainable method


def plugin_modules(method: object) -> list[str]:
    """The modules outside pathbench that define ``method``'s class or its path's: what a run
    records (meta.json, metrics.json) so that later commands load them without ``--plugin``.
    Importing the defining module runs its registration decorator."""
    classes = [type(method)] + ([type(method.path)] if hasattr(method, "path") else [])
    found = []
    for cls in classes:
        module = cls.__module__
        if module.split(".")[0] != "pathbench" and module != "__main__" and module not in found:
            found.append(module)
    return found
