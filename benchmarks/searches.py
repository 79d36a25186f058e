"""What the recipe searches (`table1_search.py`, `spiral_search.py`) share: a candidate's folder name, the commit, and
writing a search's Markdown and JSON side by side."""
import json, re, subprocess
from pathlib import Path

# a test procedure with every chain option off (`TestConfig` fields): one chain, unadjusted, noise to the end
PLAIN = dict(samples=1, adjust=False, warmup=0, tail=0)


def slug(name: str, overrides: dict) -> str:
    "A file name for candidate `name` with recipe `overrides` (its checkpoints and caches)."
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", f"{name}-{json.dumps(overrides, sort_keys=True)}")[:150]


def commit() -> str:
    "The short hash of HEAD: results say which code they come from."
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def write_results(out: Path, md: str, payload: dict) -> None:
    "Print the table `md`; write it beside `out` (.md) and `payload` to `out` (.json)."
    print(md)
    out = Path(out)
    out.write_text(json.dumps(payload, indent=1) + "\n")
    out.with_suffix(".md").write_text(md)
