"""The nox ``bench`` session, to be merged into noxfile.py (kept here so it can be read apart).

``nox -s bench -- [--quick] [--postgres URL]`` installs the bench extra (and the
native engine when it builds), then runs bench/run_all.sh: every bench script,
then the report (bench/results.md, bench/results.png).  Never run in CI.
"""

from __future__ import annotations

import nox


def bench(session: nox.Session) -> None:
    """Measure (never in CI): every bench script, then bench/report.py."""
    session.install("-e", ".[bench]")
    session.run("bash", "bench/run_all.sh", *session.posargs, external=True,
                env={"PYTHON": "python"})
