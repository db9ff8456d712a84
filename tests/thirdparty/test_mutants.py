"""The conformance suite fails, naming the broken guarantee, on every realistic engine bug.

``mutants/jsonl_mutants.py`` plants one bug at a time in the example engine
(``examples/jsonl_engine``).  For each, the suite runs the way a third party
runs it (``pytest --pyargs eventuali.testing.suite`` in a fresh interpreter)
and must fail: pytest exits with 1 (tests failed, not a crash or usage error),
the test that guards the guarantee is among the failures, and its message
states the guarantee.  The unmutated engine passes (``test_thirdparty.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from suite_runner import register, run_suite

pytestmark = pytest.mark.slow  # one interpreter running the suite per mutant
HERE = Path(__file__).parent
EXAMPLE = HERE.parent.parent / "examples" / "jsonl_engine"
MUTANTS = {
    "delete-not-persisted": "DeleteNotPersisted",
    "truncate-not-persisted": "TruncateNotPersisted",
    "checkpoint-not-persisted": "CheckpointNotPersisted",
    "metadata-not-persisted": "MetadataNotPersisted",
    "id-index-not-rebuilt": "IdIndexNotRebuilt",
    "read-all-disorder": "ReadAllDisorder",
    "check-then-act": "CheckThenAct",
    "wait-hangs": "WaitHangs",
    "hidden-by-cache": "HiddenByCache",
}

# bug -> (the test(s) guarding the guarantee - one must fail -, words its message must contain,
#         extra pytest arguments)
CAUGHT_BY = {
    "delete-not-persisted": ("test_delete_survives_reopen", "delete_stream must be persisted", []),
    "truncate-not-persisted": ("test_truncate_survives_reopen", "truncate_stream must be persisted", []),
    "checkpoint-not-persisted": ("test_checkpoints_survive_reopen", "set_checkpoint must be persisted", []),
    "metadata-not-persisted": ("test_every_field_of_every_record_survives_reopen",
                               "every field must be stored: after reopen the records' metadata differ",
                               []),
    "id-index-not-rebuilt": ("test_stored_event_ids_are_refused_after_reopen",
                             "the event-id index must survive reopen", []),
    "read-all-disorder": ("test_read_all_stays_in_position_order_after_delete_and_truncate",
                          "read_all must return records in position order after delete/truncate", []),
    # a race shows in one run or the other of the racing tests, depending on thread scheduling
    "check-then-act": (("test_concurrent_writers_share_one_backend", "test_concurrent_writers_in_threads"),
                       "append is not atomic", []),
    # state cached past the last close() hides the bug from an in-process reopen, not from
    # a fresh process
    "hidden-by-cache": ("test_a_fresh_process_sees_what_was_acknowledged",
                        "data must survive close and reopen: read_all differs when another "
                        "process opens the store", []),
    # a hung engine is failed by the per-test timeout and the run goes on
    "wait-hangs": ("test_times_out_with_the_head", "Timeout",
                   ["--eventuali-timeout=3", "-k", "times_out or wait_for"]),
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    register(site, "eventuali-jsonl-mutants",
             {f"jsonl-{bug}": f"jsonl_mutants:{cls}" for bug, cls in MUTANTS.items()})
    return site


@pytest.mark.parametrize("bug", sorted(CAUGHT_BY))
def test_the_suite_fails_on_the_bug_and_names_the_guarantee(tmp_path: Path, site: Path, bug: str) -> None:
    tests, guarantee, extra = CAUGHT_BY[bug]
    tests = (tests,) if isinstance(tests, str) else tests
    run = run_suite(tmp_path, [site, HERE / "mutants", EXAMPLE],
                    [f"--eventuali-backend=jsonl-{bug}", "--eventuali-scheme=jsonl", *extra])
    assert run.returncode == 1, f"the suite did not fail on {bug}:\n{run.output}"
    caught = [t for t in tests if t in run.failures]
    assert caught, f"none of {tests} failed on {bug}; failures: {sorted(run.failures)}\n{run.output}"
    for test in caught:
        assert guarantee in run.failures[test], run.failures[test][-3000:]
    if not extra:  # a whole-suite run: the bug fails its tests, not everything
        assert any(o == "passed" for o in run.outcomes.values()), run.output


def test_every_mutant_is_checked() -> None:
    assert set(CAUGHT_BY) == set(MUTANTS)


def test_without_pytest_timeout_a_hung_engine_still_fails(tmp_path: Path, site: Path) -> None:
    """The plugin falls back to SIGALRM when pytest-timeout is not there."""
    run = run_suite(tmp_path, [site, HERE / "mutants", EXAMPLE],
                    ["--eventuali-backend=jsonl-wait-hangs", "--eventuali-scheme=jsonl",
                     "--eventuali-timeout=2", "-p", "no:timeout", "-k", "times_out"])
    assert run.returncode == 1, run.output
    assert "timed out after 2 s (--eventuali-timeout)" in run.failures["test_times_out_with_the_head"]
