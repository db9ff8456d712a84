"""Third-party proof: engines that eventuali does not know run the shipped suite.

``dict_backend.py`` (no optional capability) and the worked example
``examples/jsonl_engine`` (persistent, snapshots, checkpoints, delete,
truncate, wait_for) are registered the way real packages are and run the one
documented command in a fresh interpreter (see ``suite_runner``).  Every test
must pass except exactly those needing capabilities the engine does not
declare.  The plugin's refusals (unknown scheme, no scheme) are checked here too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from suite_runner import check_passes, register, run_suite

HERE = Path(__file__).parent
EXAMPLE = HERE.parent.parent / "examples" / "jsonl_engine"


def test_dict_backend_runs_the_suite_with_the_documented_command(tmp_path: Path) -> None:
    register(tmp_path / "site", "eventuali-dict-backend", {"dict": "dict_backend:DictBackend"})
    run = run_suite(tmp_path, [tmp_path / "site", HERE],
                    ["--eventuali-backend=dict", "--eventuali-scheme=dict"])
    passed = check_passes(run, frozenset(), may_skip={
        "test_sqlite_file_format_is_the_shared_one",  # applies to sqlite:// files only
        "test_concurrent_writers_in_threads",  # each open of dict:// is a store of its own
    })
    assert len(passed) >= 80, f"only {len(passed)} tests passed: {run.output[-2000:]}"
    assert "test_round_trip_of_every_field" in passed


def test_example_jsonl_engine_passes_the_suite(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from eventuali_jsonl import JsonlStore
    finally:
        sys.path.remove(str(EXAMPLE))
    register(tmp_path / "site", "eventuali-jsonl", {"jsonl": "eventuali_jsonl:JsonlBackend"})
    run = run_suite(tmp_path, [tmp_path / "site", EXAMPLE],
                    ["--eventuali-backend=jsonl", "--eventuali-scheme=jsonl"])
    passed = check_passes(run, JsonlStore.capabilities, may_skip={
        "test_sqlite_file_format_is_the_shared_one",
    })
    for name in ("test_delete_survives_reopen", "test_a_fresh_process_sees_what_was_acknowledged",
                 "test_concurrent_writers_in_threads", "test_truncate_survives_reopen"):
        assert name in passed


@pytest.mark.parametrize(
    "args, message",
    [
        (["--eventuali-backend=python", "--eventuali-scheme=jsonl"],
         "backend 'python' does not serve the 'jsonl' scheme (it serves: memory, "),
        (["--eventuali-backend=dict"], "--eventuali-scheme is required for backend 'dict'"),
        (["--eventuali-backend=dict", "--eventuali-scheme=memory"],
         "backend 'dict' does not serve the 'memory' scheme"),
        (["--eventuali-backend=dict", "--eventuali-url=memory://x-{unique}"],
         "uses scheme 'memory', which backend 'dict' does not serve"),
        (["--eventuali-backend=nosuch", "--eventuali-scheme=memory"], "--eventuali-backend=nosuch"),
    ],
    ids=["scheme-not-served", "no-scheme", "typo-falls-back", "url-scheme", "unknown-backend"],
)
def test_the_suite_refuses_a_scheme_the_backend_does_not_serve(
    tmp_path: Path, args: list[str], message: str
) -> None:
    register(tmp_path / "site", "eventuali-dict-backend", {"dict": "dict_backend:DictBackend"})
    run = run_suite(tmp_path, [tmp_path / "site", HERE], args, timeout=120)
    assert run.returncode == 4, run.output  # pytest's usage error: nothing was run
    assert message in run.output
    assert not any(o == "passed" for o in run.outcomes.values())
