"""Turns the JSON of the bench scripts into ``bench/results.md`` and ``bench/results.png``.

Usage: ``python bench/report.py [JSON ...] [--out-dir bench]``.  Without
arguments it reads every ``bench/results/*.json``.  Documents in the common
``eventuali-bench/1`` shape (see bench/README.md) are shown as they are;
pytest-benchmark JSON is adapted (one row per benchmark, ``ops/s``); anything
else is listed as not understood rather than silently dropped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import result_format  # noqa: E402

HERE = Path(__file__).resolve().parent

TARGETS = {
    # (workload, storage): (minimum events/s, maximum × floor) — issue 2's end-to-end targets.
    ("save_100x100", "sqlite"): (120_000, 2.0),
    ("load_100x100", "sqlite"): (100_000, 2.0),
}
PG_TARGETS = {("save_100x100", "postgres"): 50_000, ("load_100x100", "postgres"): 80_000}

MACHINE_KEYS = ("cpu", "cores", "memory_gib", "os", "python", "pydantic", "pydantic_core", "sqlite",
                "eventuali", "eventuali_c", "eventsourcing", "psycopg", "git_commit", "load_average")


# --- reading --------------------------------------------------------------------------------


def adapt(doc: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """``doc`` in the eventuali-bench/1 shape, or None when it cannot be understood."""
    if doc.get("format") == result_format.FORMAT:
        return doc
    if "benchmarks" in doc and isinstance(doc["benchmarks"], list):  # pytest-benchmark --benchmark-json
        results = []
        for b in doc["benchmarks"]:
            stats = b.get("stats", {})
            extra = b.get("extra_info", {}) or {}
            events = int(extra.get("events", 1))
            if not stats.get("min"):
                continue
            data = stats.get("data") or [stats["min"], stats.get("median", stats["min"])]
            row = result_format.result_row(
                workload=extra.get("workload", b.get("group") or b.get("name", "?")),
                storage=str(extra.get("storage", (b.get("params") or {}).get("url", "-"))),
                contender=str(extra.get("contender", (b.get("params") or {}).get("backend",
                                                                                   b.get("name")))),
                kind=extra.get("kind", "record"), events=events, seconds=list(data),
            )
            if events == 1:
                row["unit"] = "ops/s"
            results.append(row)
        info = doc.get("machine_info", {})
        return {
            "format": result_format.FORMAT, "script": path.name,
            "command": doc.get("commit_info", {}).get("project", "pytest-benchmark"),
            "started_at": doc.get("datetime", "?"),
            "machine": {"python": info.get("python_version"), "cpu": (info.get("cpu") or {}).get(
                "brand_raw"), "cores": (info.get("cpu") or {}).get("count")},
            "settings": {"statistic": "best (min time)", "source": "pytest-benchmark"},
            "results": results, "skipped": [],
        }
    return None


def read_all(paths: list[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    docs, problems = [], []
    for p in paths:
        try:
            raw = result_format.load(p)
        except (OSError, ValueError) as exc:
            problems.append(f"{p}: unreadable ({exc})")
            continue
        doc = adapt(raw, p)
        if doc is None:
            problems.append(f"{p}: not an {result_format.FORMAT} or pytest-benchmark document; "
                            "see bench/README.md for the shape")
            continue
        for issue in result_format.validate(doc):
            problems.append(f"{p}: {issue}")
        doc["_path"] = str(p)
        docs.append(doc)
    return docs, problems


# --- Markdown -------------------------------------------------------------------------------


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return ""
    return f"{v:,.0f}{unit}" if v >= 100 else f"{v:,.2f}{unit}"


def _x(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}×"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    right = [not h.lower().startswith(("workload", "storage", "contender", "kind", "note", "what", "value", "status", "unit"))
             for h in header]
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def machine_section(doc: dict[str, Any]) -> list[str]:
    m = doc.get("machine", {})
    rows = [[k, ", ".join(map(str, m[k])) if isinstance(m[k], list) else str(m[k])]
            for k in MACHINE_KEYS if m.get(k) is not None]
    return _table(["what", "value"], rows)


def targets_section(doc: dict[str, Any]) -> list[str]:
    rows_in = doc["results"]
    rat = {(r["workload"], r["storage"], r["contender"], r["ratio"]): r["value"]
           for r in result_format.ratios(doc)}
    rows = []
    for (w, s), (rate_min, floor_max) in TARGETS.items():
        for r in rows_in:
            if r["workload"] == w and r["storage"] == s and r["kind"] == "eventuali":
                xf = rat.get((w, s, r["contender"], "x_floor"))
                ok = r["best"] >= rate_min and (xf is None or xf <= floor_max)
                rows.append([w, s, r["contender"], _num(r["best"]), f"≥ {rate_min:,}",
                             _x(xf), f"≤ {floor_max:.1f}×", "met" if ok else "**not met**"])
    for (w, s), rate_min in PG_TARGETS.items():
        for r in rows_in:
            if r["workload"] == w and r["storage"] == s and r["kind"] == "eventuali":
                ok = r["best"] >= rate_min
                rows.append([w, s, r["contender"], _num(r["best"]), f"≥ {rate_min:,}", "", "",
                             "met" if ok else "**not met**"])
    if not rows:
        return []
    return ["### Targets", ""] + _table(
        ["workload", "storage", "contender", "events/s (best)", "target", "× floor", "target",
         "status"], rows) + [""]


def results_section(doc: dict[str, Any]) -> list[str]:
    rows_in = doc["results"]
    rat = {(r["workload"], r["storage"], r["contender"], r["ratio"]): r["value"]
           for r in result_format.ratios(doc)}
    titles = doc.get("settings", {}).get("workloads") or {}
    out: list[str] = []
    workloads = list(dict.fromkeys(r["workload"] for r in rows_in))
    has_ms = any(r.get("ms_per_op") for r in rows_in)
    for w in workloads:
        wrows = [r for r in rows_in if r["workload"] == w]
        title = titles.get(w, w) if isinstance(titles, dict) else w
        out += [f"#### {title} (`{w}`)", ""]
        header = ["storage", "contender", "best", "median", "unit", "× floor",
                  "vs eventsourcing", "c vs python"]
        if has_ms:
            header.append("ms/op (best)")
        header.append("note")
        body = []
        order = {"floor": 0, "eventuali": 1, "peer": 2, "record": 3, "server": 4}
        for r in sorted(wrows, key=lambda r: (r["storage"] != "-", r["storage"],
                                              order.get(r["kind"], 9), r["contender"])):
            key = (r["workload"], r["storage"], r["contender"])
            line = [r["storage"], f"**{r['contender']}**" if r["kind"] == "eventuali"
                    else r["contender"],
                    _num(r["best"]), _num(r["median"]), r.get("unit", "events/s"),
                    _x(rat.get((*key, "x_floor"))), _x(rat.get((*key, "vs_eventsourcing"))),
                    _x(rat.get((*key, "c_vs_python")))]
            if has_ms:
                line.append(_num(r.get("ms_per_op")) if r.get("ms_per_op") else "")
            line.append(r.get("note", ""))
            body.append(line)
        out += _table(header, body) + [""]
    return out


def document_section(doc: dict[str, Any]) -> list[str]:
    s = doc.get("settings", {})
    out = [f"## {doc['script']}", "",
           f"Command: `{doc['command']}`  ",
           f"Started: {doc['started_at']}  ",
           f"Source: `{Path(doc['_path']).name}`", ""]
    facts = []
    for k in ("repeats", "warmup_passes", "statistic", "gc", "counts", "apis",
              "sqlite_synchronous", "sqlite_journal_mode", "quick"):
        if k in s:
            facts.append(f"- {k.replace('_', ' ')}: `{s[k]}`")
    if facts:
        out += ["Settings:", ""] + facts + [""]
    out += ["Machine:", ""] + machine_section(doc) + [""]
    if doc["script"] == "bench_e2e.py":
        out += targets_section(doc)
    out += ["### Results", "",
            "`best` and `median` are throughputs over the timed passes (higher is better). "
            "`× floor` = floor rate / contender rate: how many times the bare pydantic cost "
            "the contender pays. `vs eventsourcing` and `c vs python` > 1 mean faster.", ""]
    out += results_section(doc)
    for sk in doc.get("skipped", []):
        out.append(f"- skipped {sk['contender']} on {sk['storage']}: {sk['reason']}")
    if doc.get("skipped"):
        out.append("")
    return out


def markdown(docs: list[dict[str, Any]], problems: list[str], png: Path | None) -> str:
    out = ["# eventuali benchmark results", "",
           "Generated by `python bench/report.py` from the JSON of the bench scripts; "
           "how to run and what the numbers mean: [bench/README.md](README.md).", ""]
    if png is not None:
        out += [f"![events/s per workload and contender]({png.name})", ""]
    for doc in docs:
        out += document_section(doc)
    if problems:
        out += ["## Inputs not understood", ""] + [f"- {p}" for p in problems] + [""]
    return "\n".join(out).rstrip() + "\n"


# --- the picture ----------------------------------------------------------------------------


def plot(docs: list[dict[str, Any]], path: Path) -> bool:
    """Grouped bars of events/s per workload (one panel each), the floor as a dashed line."""
    e2e = [d for d in docs if d["script"] == "bench_e2e.py"]
    if not e2e:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = e2e[-1]["results"]
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    titles = e2e[-1].get("settings", {}).get("workloads") or {}
    contenders = list(dict.fromkeys(r["contender"] for r in rows
                                    if r["kind"] != "floor" and r["storage"] != "-"))
    cmap = plt.get_cmap("tab10")
    colours = {c: cmap(i % 10) for i, c in enumerate(contenders + ["eventuali"])}
    ncols = 3
    nrows = (len(workloads) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 4.2 * nrows), squeeze=False)
    for ax, w in zip(axes.flat, workloads, strict=False):
        wrows = [r for r in rows if r["workload"] == w and r["kind"] != "floor"]
        storages = list(dict.fromkeys(r["storage"] for r in wrows))
        names = list(dict.fromkeys(r["contender"] for r in wrows))
        width = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            xs, ys = [], []
            for j, s in enumerate(storages):
                for r in wrows:
                    if r["storage"] == s and r["contender"] == name:
                        xs.append(j - 0.4 + width * (i + 0.5))
                        ys.append(r["best"])
            ax.bar(xs, ys, width, label=name, color=colours.get(name))
        floor = result_format.floor_for(rows, w)
        if floor:
            ax.axhline(floor, color="black", linestyle="--", linewidth=1.2,
                       label="pydantic floor")
        ax.set_xticks(range(len(storages)))
        ax.set_xticklabels(["(no storage)" if s == "-" else s for s in storages])
        ax.set_title(titles.get(w, w) if isinstance(titles, dict) else w, fontsize=10)
        ax.set_ylabel("events/s (best)")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(workloads):]:
        ax.set_visible(False)
    m = e2e[-1].get("machine", {})
    fig.suptitle(f"eventuali end to end — {m.get('cores')} cores, Python {m.get('python')}, "
                 f"pydantic {m.get('pydantic')}, SQLite {m.get('sqlite')} "
                 f"({e2e[-1].get('started_at', '')})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="bench JSON -> results.md + results.png")
    p.add_argument("json", nargs="*", type=Path, help="default: bench/results/*.json")
    p.add_argument("--out-dir", type=Path, default=HERE)
    args = p.parse_args(argv)
    paths = args.json or sorted((HERE / "results").glob("*.json"))
    if not paths:
        print("no JSON given and none in bench/results/; run bench/run_all.sh first",
              file=sys.stderr)
        return 2
    docs, problems = read_all(paths)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    png = args.out_dir / "results.png"
    has_png = plot(docs, png)
    md = markdown(docs, problems, png if has_png else None)
    (args.out_dir / "results.md").write_text(md, encoding="utf-8")
    print(f"wrote {args.out_dir / 'results.md'}" + (f" and {png}" if has_png else ""))
    for pr in problems:
        print(f"warning: {pr}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
