"""The README's Python blocks run as written and print what they claim."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


def test_readme_blocks_run_and_print_their_comments():
    for block in BLOCKS:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(README), "exec"), {})
        printed = out.getvalue().splitlines()
        # Every `print(...)  # value` comment in the block is what it printed.
        claims = [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s+#\s*(.+)", block)]
        promised = [c for c in claims if not c.startswith("held-out")]
        got = iter(printed)
        for claim in claims:
            line = next(got)
            if claim in promised:
                assert line == claim, (claim, line)
