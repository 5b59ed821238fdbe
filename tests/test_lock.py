"""constraints.txt locks the project's environment: every package `make` installs, exactly."""

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parents[1] / "constraints.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.!+_-]+)$")


def _pins():
    pins = {}
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line.strip())
        assert match, f"constraints.txt: {line!r} is not an exact pin (name==version)"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"constraints.txt pins {name} twice"
        pins[name] = match.group(2)
    return pins


def _installed_closure(name, extras=()):
    """The distributions ``name[extras]`` needs here, transitively, markers evaluated."""
    needed, todo = set(), [(name, tuple(extras))]
    while todo:
        dist_name, dist_extras = todo.pop()
        requires = metadata.distribution(dist_name).requires or []
        for text in requires:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in dist_extras] or [{"extra": ""}]
            if requirement.marker is not None and not any(
                requirement.marker.evaluate(env) for env in environments
            ):
                continue
            key = canonicalize_name(requirement.name)
            if key not in needed:
                needed.add(key)
                todo.append((requirement.name, tuple(requirement.extras)))
    return needed


def test_every_line_of_the_lock_is_an_exact_pin_and_torch_is_the_cpu_build():
    pins = _pins()
    assert pins["torch"] == "2.13.0"
    # The build backend is locked too: make installs with --no-build-isolation.
    assert {"pip", "setuptools", "wheel"} <= pins.keys()


def _version(name):
    try:
        return metadata.version(name).split("+")[0]
    except metadata.PackageNotFoundError:
        return None


def test_the_lock_holds_every_package_the_project_and_its_tests_need():
    try:
        needed = _installed_closure("nilearn-stca", extras=("test",))
    except metadata.PackageNotFoundError:
        pytest.skip("nilearn-stca is not installed (run the suite through make test)")
    pins = _pins()
    # What a package needs depends on its release (pandas 2 needs pytz, pandas 3 does not):
    # the closure of another environment (make test-latest once releases move, a user's) is
    # not the lock's.
    other = sorted(f"{n} {_version(n)}" for n in needed & pins.keys() if _version(n) != pins[n])
    if other:
        pytest.skip(f"not the locked environment ({', '.join(other[:3])}... differ from the lock)")
    missing = sorted(needed - pins.keys())
    assert not missing, f"constraints.txt lacks {missing}: regenerate it with `make lock`"
