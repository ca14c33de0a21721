"""Splice measured results into README.md: every `<!-- results:NAME -->` block is replaced by
docs/results/NAME.md, which the benchmark and evaluation commands wrote (see each file's
first line for the command that produced it).

    python benchmarks/update_readme.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(.*?)(<!-- /results:(?P=name) -->)", re.S)


def splice(readme: str, results_dir: Path) -> tuple[str, list[str]]:
    missing = []

    def replace(match: re.Match) -> str:
        path = results_dir / f"{match['name']}.md"
        if not path.exists():
            missing.append(match["name"])
            return match.group(0)
        return match.group(1) + path.read_text().rstrip() + "\n" + match.group(4)

    return BLOCK.sub(replace, readme), missing


def main() -> int:
    readme = ROOT / "README.md"
    text, missing = splice(readme.read_text(), ROOT / "docs" / "results")
    readme.write_text(text)
    for name in missing:
        print(f"no docs/results/{name}.md yet: block left as it was", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
