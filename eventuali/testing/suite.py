"""The conformance suite bound to the backend named on the command line.

This is what the one documented command runs::

    pytest --pyargs eventuali.testing.suite --eventuali-backend=NAME --eventuali-scheme=SCHEME

The options come from :mod:`eventuali.testing.plugin`; the tests from
:mod:`eventuali.testing.contract`.
"""

from __future__ import annotations

from .contract import BackendContract


class TestBackendConformance(BackendContract):
    """Every conformance test, against ``--eventuali-backend`` on ``--eventuali-scheme``."""
