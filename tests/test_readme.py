"""The README's Python blocks run as written (in a temporary directory)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_two_fresh_machine_commands_first():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    assert "python -m eventuali demo" in first_block and "python -m nox -s tests" in first_block


def test_quick_start_runs_as_written(tmp_path):
    quick_start = python_blocks()[0]
    out = subprocess.run(
        [sys.executable, "-c", quick_start], cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "conflict: stream 'user-123': expected version 1, actual version 2" in out.stdout
    assert "['UserRegistered', 'UserEmailChanged']" in out.stdout
    assert (tmp_path / "quickstart.db").exists()


def test_upcaster_example_defines_what_it_says(tmp_path):
    # In a subprocess: the example registers "PriceSet" in the process-wide registry.
    block = python_blocks()[1] + (
        "\nfrom eventuali import event_registry\n"
        "print(event_registry.upcast('PriceSet', 1, 2, {'amount': 1.25}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'amount_cents': 125}"
