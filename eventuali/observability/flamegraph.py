"""Render a cProfile run as a flame graph (SVG).

cProfile keeps, for each function, its callers and the time spent in it per
caller - one level of stack, not whole stacks.  The graph is rebuilt from
those caller edges, the way gprof2dot and flameprof do: a function's box
under a caller is as wide as the time it took when called from that caller.
When a function is reached along several paths, its children are split in
proportion, so deep stacks are an estimate; the widths of the first levels
are measured.  Hover a box for its name, time and share.
"""

from __future__ import annotations

import hashlib
from html import escape
from typing import Any

Func = tuple[str, int, str]  # (file, line, function) as pstats keys them

_ROW = 17
_MIN_PX = 0.4
_MAX_DEPTH = 64


def label(func: Func) -> str:
    file, line, name = func
    if file == "~":  # built-ins
        return name
    short = file.rsplit("/", 1)[-1]
    return f"{name} ({short}:{line})"


def _color(name: str) -> str:
    h = hashlib.blake2b(name.encode(), digest_size=2).digest()
    return f"rgb({205 + h[0] % 50},{80 + h[1] % 130},{40 + h[0] % 40})"


def build_tree(stats: dict[Func, tuple]) -> dict[str, Any]:
    """The call tree as nested dicts ``{"name", "func", "value", "children"}`` (seconds)."""
    children_of: dict[Func, list[tuple[Func, float]]] = {}
    roots: list[tuple[Func, float]] = []
    for func, (_cc, _nc, _tt, ct, callers) in stats.items():
        known = [c for c in callers if c in stats and c != func]
        if not known:
            roots.append((func, ct))
        for caller, edge in callers.items():
            if caller in stats and caller != func:
                children_of.setdefault(caller, []).append((func, edge[3]))

    def node(func: Func, value: float, path: frozenset, depth: int) -> dict[str, Any]:
        n: dict[str, Any] = {"name": label(func), "func": func, "value": value, "children": []}
        if depth >= _MAX_DEPTH:
            return n
        kids = [(f, v) for f, v in children_of.get(func, ()) if f not in path and v > 0]
        total = sum(v for _, v in kids)
        # Children may sum to more than the parent (recursion, or several call
        # paths sharing one caller entry): scale them down to fit.
        scale = value / total if total > value > 0 else 1.0
        for f, v in sorted(kids, key=lambda fv: -fv[1]):
            n["children"].append(node(f, v * scale, path | {f}, depth + 1))
        return n

    root_nodes = [node(f, v, frozenset({f}), 1) for f, v in sorted(roots, key=lambda fv: -fv[1])]
    return {"name": "all", "func": None, "value": sum(r["value"] for r in root_nodes),
            "children": root_nodes}


def render_svg(stats: dict[Func, tuple], title: str = "eventuali profile", width: int = 1200) -> str:
    """An SVG flame graph (root at the bottom) of pstats-style ``stats``."""
    tree = build_tree(stats)
    total = tree["value"] or 1e-12
    boxes: list[tuple[int, float, float, dict[str, Any]]] = []

    def walk(n: dict[str, Any], depth: int, x: float) -> int:
        w = n["value"] / total * width
        if w < _MIN_PX:
            return depth
        boxes.append((depth, x, w, n))
        deepest = depth
        cx = x
        for c in n["children"]:
            deepest = max(deepest, walk(c, depth + 1, cx))
            cx += c["value"] / total * width
        return deepest

    max_depth = walk(tree, 0, 0.0)
    top = 30
    height = top + (max_depth + 1) * _ROW + 10
    out = [
        '<?xml version="1.0" standalone="no"?>',
        f'<svg version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        "<style>text{font-family:monospace;font-size:11px;fill:#000}"
        "g:hover rect{stroke:#000;stroke-width:0.5}</style>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fdfaf3"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" style="font-size:14px">'
        f"{escape(title)} ({total * 1000:.1f} ms)</text>",
    ]
    for depth, x, w, n in boxes:
        y = height - 10 - (depth + 1) * _ROW
        name = n["name"]
        tip = f"{name}: {n['value'] * 1000:.3f} ms, {n['value'] / total * 100:.1f}%"
        fill = "#c8c8c8" if n["func"] is None else _color(name)
        out.append(f'<g><title>{escape(tip)}</title>'
                   f'<rect x="{x:.2f}" y="{y}" width="{max(w - 0.3, 0.1):.2f}" height="{_ROW - 1}" '
                   f'fill="{fill}" rx="1"/>')
        chars = int(w / 6.6)
        if chars >= 3:
            text = name if len(name) <= chars else name[: chars - 2] + ".."
            out.append(f'<text x="{x + 3:.2f}" y="{y + 12}">{escape(text)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
