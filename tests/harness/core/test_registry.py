"""The registry, plugin loading and `pathbench list`."""

import subprocess
import sys
import textwrap

import pytest

from pathbench.core.errors import ConfigError
from pathbench.core.registry import DuplicateNameError, Registry, UnknownNameError
from pathbench.engine.plugins import PluginError, import_plugin


def make_registry():
    reg = Registry("path")

    @reg.register("linear", "mixture")
    class Linear:
        """A straight line."""

    @reg.register("kl")
    class KL:
        def __init__(self, beta=0.01):
            if not 0 < beta < 1:
                raise ConfigError(f"beta = {beta} is outside (0, 1)")

    for name in ("euclidean", "fisher_rao"):
        reg.add(name, type(name, (), {}))
    return reg, Linear


def test_lookup_by_name_and_alias():
    reg, linear = make_registry()
    assert reg.get("linear") is linear and reg.get("mixture") is linear
    assert reg.canonical("mixture") == "linear"
    assert reg.names() == ["euclidean", "fisher_rao", "kl", "linear"]
    assert "mixture" in reg and "nope" not in reg


def test_unknown_name_lists_known_names():
    reg, _ = make_registry()
    with pytest.raises(UnknownNameError) as info:
        reg.get("kll")
    assert str(info.value) == "unknown path 'kll'; known: euclidean, fisher_rao, kl, linear"


def test_duplicate_name_or_alias_fails_naming_the_first_owner():
    reg, _ = make_registry()
    with pytest.raises(DuplicateNameError, match=r"path 'kl' is already registered \(by .*KL\)"):
        reg.add("kl", object)
    with pytest.raises(DuplicateNameError, match="path 'mixture' is already registered"):
        reg.add("other", object, "mixture")
    assert reg.names() == ["euclidean", "fisher_rao", "kl", "linear"]  # nothing half-registered


def test_build_prefixes_errors_with_the_component():
    reg, _ = make_registry()
    with pytest.raises(ConfigError, match=r"^path 'kl': beta = 0 is outside \(0, 1\)$"):
        reg.build("kl", beta=0)
    with pytest.raises(ConfigError, match=r"^unknown option 'gamma' for path 'kl'; valid: beta$"):
        reg.build("kl", gamma=1)  # the constructor's own keys, not Python's TypeError text


def test_plugin_import_failure_is_one_line():
    with pytest.raises(PluginError, match=r"^plugin 'no_such_module_xyz' failed to import: ModuleNotFoundError"):
        import_plugin("no_such_module_xyz")


PLUGIN = textwrap.dedent('''
    """A third-party path living outside the packages."""
    from pathbench.core.registry import PATHS
    from pathbench.paths.linear import LinearPath

    @PATHS.register("toy_line")
    class ToyLine(LinearPath):
        """A plugin path for the tests."""
''')


def run_cli(args, tmp_path, env_extra=None):
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "pathbench.cli", *args], capture_output=True,
                          text=True, env=env, cwd=tmp_path)


def test_list_shows_builtin_paths_and_a_plugin_given_on_the_command_line(tmp_path):
    (tmp_path / "toy_plugin.py").write_text(PLUGIN)
    out = run_cli(["list", "--plugin", "toy_plugin"], tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("linear", "fisher_rao", "kl", "euclidean", "toy_line"):
        assert f"\n  {name}" in out.stdout
    assert "A plugin path for the tests." in out.stdout


def test_plugin_through_entry_point_group(tmp_path):
    (tmp_path / "toy_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "toy_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pathbench.plugins]\ntoy = toy_plugin\n")
    out = run_cli(["list"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "\n  toy_line" in out.stdout


def test_plugin_taking_a_used_name_fails_in_one_line(tmp_path):
    (tmp_path / "bad_plugin.py").write_text(PLUGIN.replace('"toy_line"', '"kl"'))
    out = run_cli(["list", "--plugin", "bad_plugin"], tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "plugin 'bad_plugin' failed to register: path 'kl' is already registered" in out.stderr


def test_plugin_that_fails_to_import(tmp_path):
    (tmp_path / "broken_plugin.py").write_text("import not_a_real_dependency\n")
    out = run_cli(["list", "--plugin", "broken_plugin"], tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "pathbench list: error: plugin 'broken_plugin' failed to import: "
        "ModuleNotFoundError: No module named 'not_a_real_dependency'"
    )
