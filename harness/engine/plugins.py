"""Loading the components that fill the registries.

Built-in packages (``paths``, ``baselines``, ``tasks``) register on import. Third-party
code registers through the entry-point group ``pathbench.plugins`` (each entry point names
a module to import) or ``--plugin some.module`` on any CLI command.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points

from harness.core.errors import ConfigError

BUILTIN_PACKAGES = ("paths", "baselines", "tasks")
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
    if extra and os.getcwd() not in sys.path:
        # a console script does not put the working directory on sys.path; a user's plugin
        # module next to their experiment should still be found
        sys.path.append(os.getcwd())
    for module in extra:
        import_plugin(module)
    from harness.engine.methods import register_path_methods  # imports torch: not for --help

    register_path_methods()  # every path, plugin paths included, is a trainable method
