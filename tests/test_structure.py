"""Issue #16's structural bars, enforced: no module of pacte/ over 600 lines.

The other two bars are enforced elsewhere: no function over a cyclomatic complexity of
15 by ruff's mccabe rule (C901, pyproject.toml), no import cycle by `lint-imports`'
`no-cycles` contract; both run in CI (.ci/run).
"""

from __future__ import annotations

from pathlib import Path

import pacte

MAX_LINES = 600


def too_long(root: Path) -> list[str]:
    """Each module under `root` over MAX_LINES lines, named with its count."""
    found = []
    for path in sorted(root.rglob("*.py")):
        count = len(path.read_text(encoding="utf-8").splitlines())
        if count > MAX_LINES:
            found.append(f"{path.relative_to(root.parent)} ({count} lines)")
    return found


def test_no_module_of_pacte_is_over_600_lines() -> None:
    root = Path(pacte.__file__).parent
    assert (root / "graph" / "session.py").is_file()
    over = too_long(root)
    assert not over, f"modules over {MAX_LINES} lines: {', '.join(over)}"


def test_a_long_module_is_named_with_its_count(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "short.py").write_text("x = 1\n" * MAX_LINES)
    (package / "sub" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert too_long(package) == [f"{Path('pkg/sub/long.py')} ({MAX_LINES + 1} lines)"]
