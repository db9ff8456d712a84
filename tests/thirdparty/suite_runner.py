"""Run the shipped conformance suite in a fresh interpreter, the way a third party does.

An engine is registered the way a real package is - an installed distribution's
``entry_points.txt`` under the ``eventuali.backends`` group - by writing that
``.dist-info`` into a temporary directory put on ``PYTHONPATH``.  Then the one
documented command (``pytest --pyargs eventuali.testing.suite …``) runs in a
subprocess, and its JUnit report is read back test by test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from eventuali.testing.contract import BackendContract


@dataclass
class SuiteRun:
    returncode: int
    output: str
    outcomes: dict[str, str]
    """Test name -> ``passed``, ``skipped`` or ``failed``."""
    failures: dict[str, str]
    """Failed test name -> its failure message and traceback."""


def register(site: Path, dist: str, entry_points: dict[str, str]) -> None:
    """Write a distribution ``dist`` whose ``eventuali.backends`` entry points are ``entry_points``."""
    info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text("[eventuali.backends]\n" + lines)


def run_suite(tmp_path: Path, paths: list[Path], args: list[str], timeout: float = 600) -> SuiteRun:
    """Run the suite with ``args`` and ``paths`` (module directories, sites) on PYTHONPATH."""
    report = tmp_path / "report.xml"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), env.get("PYTHONPATH", "")])
    env.pop("EVENTUALI_BACKEND", None)
    cwd = tmp_path / "work"
    cwd.mkdir()
    cmd = [sys.executable, "-m", "pytest", "--pyargs", "eventuali.testing.suite",
           # pytest-benchmark (a dev dependency here) makes .benchmarks/ in the cwd itself
           "-p", "no:cacheprovider", "-p", "no:benchmark", "-q", f"--junitxml={report}", *args]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    outcomes: dict[str, str] = {}
    failures: dict[str, str] = {}
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            name = case.get("name", "")
            bad = case.find("failure")
            if bad is None:
                bad = case.find("error")
            if bad is not None:
                outcomes[name] = "failed"
                failures[name] = (bad.get("message") or "") + "\n" + (bad.text or "")
            else:
                outcomes[name] = "skipped" if case.find("skipped") is not None else "passed"
    stray = sorted(p.name for p in cwd.iterdir())
    assert not stray, f"the suite left files in the working directory: {stray}"
    return SuiteRun(done.returncode, done.stdout[-6000:] + done.stderr[-3000:], outcomes, failures)


def required_capabilities(name: str) -> set[str]:
    """The capabilities the contract test ``name`` (``test_x`` or ``test_x[param-id]``) asks for."""
    base, _, param = name.partition("[")
    marks = list(getattr(getattr(BackendContract, base), "pytestmark", []))
    for mark in list(marks):
        if mark.name == "parametrize" and param:
            for value in mark.args[1]:
                if getattr(value, "id", None) == param.rstrip("]"):
                    marks.extend(value.marks)
    return {cap for mark in marks if mark.name == "requires" for cap in mark.args}


def check_passes(run: SuiteRun, declared: frozenset[str], may_skip: set[str]) -> set[str]:
    """Assert the run passed, skipping exactly the tests of undeclared capabilities
    (plus ``may_skip``, skipped for a stated reason); return the passed tests."""
    assert run.returncode == 0, run.output
    failed = sorted(n for n, o in run.outcomes.items() if o == "failed")
    assert not failed, failed
    passed = {n for n, o in run.outcomes.items() if o == "passed"}
    skipped = {n for n, o in run.outcomes.items() if o == "skipped"}
    must_skip = {n for n in run.outcomes if required_capabilities(n) - declared}
    assert must_skip <= skipped, sorted(must_skip - skipped)
    base = lambda n: n.split("[")[0]  # noqa: E731
    assert {base(n) for n in skipped - must_skip} <= may_skip, sorted(skipped - must_skip)
    assert f"{len(passed)} passed" in run.output
    return passed
