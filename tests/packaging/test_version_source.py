"""One version for eventuali, eventuali-c and the C library: the repository's VERSION file.

Both distributions read VERSION at build time (setuptools ``dynamic``,
scikit-build-core's regex and template providers), and so does the C library's
CMake build.  The one literal that setuptools cannot derive is the ``native``
extra's pin (PEP 621 forbids a partly dynamic ``optional-dependencies``); these
tests fail the moment it or any installed piece disagrees with VERSION.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

import eventuali
from eventuali import registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "VERSION").read_text(encoding="utf-8").strip()


def _pyproject(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def test_version_file_holds_one_pep440_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*(\.post\d+)?(\.dev\d+)?", VERSION), VERSION


def test_native_extra_pins_eventuali_c_to_version() -> None:
    extras = _pyproject(ROOT / "pyproject.toml")["project"]["optional-dependencies"]
    assert extras["native"] == [f"eventuali-c=={VERSION}"], (
        f"the native extra {extras['native']} must pin eventuali-c=={VERSION} (the VERSION file); "
        "edit pyproject.toml's [project.optional-dependencies] native when VERSION changes"
    )


def test_both_distributions_take_their_version_from_version_file() -> None:
    core = _pyproject(ROOT / "pyproject.toml")
    assert "version" not in core["project"] and "version" in core["project"]["dynamic"]
    assert core["tool"]["setuptools"]["dynamic"]["version"] == {"file": "VERSION"}
    native = _pyproject(ROOT / "backends" / "c" / "pyproject.toml")
    assert {"version", "dependencies"} <= set(native["project"]["dynamic"])
    assert "version" not in native["project"] and "dependencies" not in native["project"]
    meta = native["tool"]["scikit-build"]["metadata"]
    assert (ROOT / "backends" / "c" / meta["version"]["input"]).resolve() == ROOT / "VERSION"
    assert "eventuali=={project[version]}" in meta["dependencies"]["result"]
    cmake = (ROOT / "backends" / "c" / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"project\([^)]*\bVERSION\b", cmake) is None, "CMake must read VERSION"


def test_installed_eventuali_reports_version() -> None:
    assert eventuali.__version__ == VERSION, (
        f"installed eventuali says {eventuali.__version__}, VERSION says {VERSION}: reinstall "
        "(pip install -e .)"
    )


def test_installed_c_engine_and_library_report_version() -> None:
    info = {i.name: i for i in registry.describe_all()}
    if "c" not in info or not info["c"].loads:
        reason = "the c backend is not installed here (pip install ./backends/c)"
        if os.environ.get("EVENTUALI_REQUIRE_C") == "1":
            pytest.fail(f"EVENTUALI_REQUIRE_C=1 but {reason}")
        pytest.skip(reason)
    details = info["c"].details
    assert details["version"] == VERSION, details
    assert details["library version"].split()[-1] == VERSION, details
