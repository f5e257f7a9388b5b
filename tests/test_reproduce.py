"""The one-command reproduction runs end to end (its --quick sizes)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "reproduce_report.py"


@pytest.mark.slow
def test_reproduce_report_quick(tmp_path):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = (tmp_path / "report.md").read_text()
    for heading in ("Exercise 1", "Exercise 2", "Table 1", "Table 2"):
        assert heading in report
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(figures) >= 10
    for name in figures:  # every figure the report shows was written
        assert (tmp_path / name).stat().st_size > 0, name
    # the filters' localization and orientation are measured beside each grid
    indices = re.findall(
        r"localization index median ([0-9.]+).*?orientation index median ([0-9.]+)", report
    )
    assert len(indices) >= 2 and all(0 < float(a) <= 1 and 0 <= float(b) <= 1 for a, b in indices)
    # every likelihood in the tables is a finite number
    rows = [line for line in report.splitlines() if line.startswith("| ") and "---" not in line]
    cells = [c.strip() for line in rows for c in line.strip("|").split("|")[1:]]
    numbers = [c for c in cells if re.fullmatch(r"-?[0-9.]+", c)]
    assert numbers and all(float(c) == float(c) for c in numbers)
    assert not any(c in ("nan", "inf", "-inf") for c in cells)
