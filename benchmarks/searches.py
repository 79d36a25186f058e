"""What the benchmark scripts share: a candidate's folder name (the recipe searches), the commit, writing Markdown and
JSON side by side, the machine a timing ran on, and the table of an A/B timing alternated in rounds."""
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


def machine() -> dict:
    "This machine and the moment: what a timing's reader needs beside its numbers."
    import datetime, os, platform
    import torch
    from odelebm.experiments.timing import matmul_gflops
    return dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                name=platform.processor() or platform.machine(), torch=torch.__version__,
                threads=torch.get_num_threads(), cores=os.cpu_count(), matmul_gflops=matmul_gflops())


def alternating_table(res: dict, title: str, names: tuple[str, str], noun: str) -> list[str]:
    """Markdown of an A/B timing alternated in rounds (`res`: machine, command, commit, rounds of {name: {row: s}},
    orders, warmup, repeats, quick): the median of each row per side, and the median of the rounds' own ratios."""
    import statistics
    m, (a, b) = res["machine"], names
    lines = [f"# {title}", "", f"`{res['command']}` at {res['commit']}", "",
             f"{m['name']}, {m['cores']} cores, torch {m['torch']}, {m['threads']} thread(s), matmul "
             f"{m['matmul_gflops']:.0f} GFLOP/s; {m['date']}; {len(res['rounds'])} rounds alternating the {noun} "
             f"(order {', '.join(res['orders'])}), each row the median of {res['repeats']} timed calls after "
             f"{res['warmup']} warm-up{' (QUICK sizes: not comparable)' if res['quick'] else ''}.", "",
             f"| row | {a} (ms) | {b} (ms) | {b} / {a} |", "|---|---|---|---|"]
    for k in res["rounds"][0][a]:
        x, y = ([r[n][k] for r in res["rounds"]] for n in names)
        q = statistics.median(v / u for u, v in zip(x, y))   # each round's own ratio
        lines.append(f"| {k} | {statistics.median(x) * 1e3:.2f} | {statistics.median(y) * 1e3:.2f} | {q:.2f} |")
    return lines
