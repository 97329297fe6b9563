"""requirements.lock (README "Pinned environment") agrees with pyproject.toml: every requirement
of the install scripts/install.sh makes is pinned, at a version the requirement allows, and
torch is left to the script (pinned on a CPU machine, a CUDA build with a GPU)."""

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib (the lock is resolved for 3.11)")

ROOT = Path(__file__).parents[1]
EXTRAS = ("dev", "eval", "logging")  # what scripts/install.sh installs


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec:
            name, sep, version = spec.partition("==")
            assert sep and version, f"not an exact pin: {line!r}"
            out[canonicalize_name(name)] = version
    return out


def test_the_lock_pins_every_requirement_at_an_allowed_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    requirements += [Requirement(r) for extra in EXTRAS for r in project["optional-dependencies"][extra]]
    locked = pins()
    assert len(locked) > 50  # the closure, not only the direct requirements
    for req in requirements:
        name = canonicalize_name(req.name)
        if name == "torch":
            assert name not in locked  # scripts/install.sh decides torch per machine
            continue
        assert name in locked, f"{req} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"requirements.lock pins {name}=={locked[name]}, outside {req}: run `make lock`")
