"""The HTML report of a run: metrics table, loss curves and picture grids (and the text table).

Pictures are PNG files next to ``index.html``; the page has no external resources,
so it can be opened from disk or attached to an issue.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..core.logger import read_scalars


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}"
    return html.escape(str(v))


def plot_losses(out_dir: str | Path, path: str | Path) -> bool:
    """Loss curves from ``scalars.jsonl`` (one panel per stage); False when there are none."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_scalars(out_dir)
    if not records:
        return False
    stages: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    for r in records:
        for k, v in r["scalars"].items():
            if "norm" in k or "pck" in k:
                continue
            xs, ys = stages.setdefault(r["stage"], {}).setdefault(k, ([], []))
            xs.append(r["step"])
            ys.append(v)
    fig, axes = plt.subplots(1, len(stages), figsize=(5.5 * len(stages), 3.6), squeeze=False)
    for ax, (stage, series) in zip(axes[0], stages.items()):
        for k, (xs, ys) in sorted(series.items()):
            ys_arr = np.asarray(ys)
            w = 1 if stage == "eval" else max(1, len(ys_arr) // 50)
            smooth = np.convolve(ys_arr, np.ones(w) / w, mode="valid")
            ax.plot(xs[w - 1:], smooth, label=k)
        ax.set_title("test error % (eval)" if stage == "eval" else stage)
        ax.set_xlabel("step")
        if stage != "eval":
            ax.set_yscale("log")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def metrics_table(rows: Sequence[tuple[str, Mapping[str, Any]]], columns: Sequence[tuple[str, str]]) -> str:
    """An HTML table: one row per method, ``columns`` as (key, header)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in columns)
    body = "".join(
        "<tr><td>" + html.escape(name) + "</td>" + "".join(f"<td>{_fmt(m.get(k))}</td>" for k, _ in columns) + "</tr>"
        for name, m in rows)
    return f"<table><tr><th>method</th>{head}</tr>{body}</table>"


def format_table(rows: Sequence[tuple[str, Mapping[str, Any]]], columns: Sequence[tuple[str, str]]) -> str:
    """A fixed-width text table: one row per method, ``columns`` as (key, header)."""
    def cell(v: Any) -> str:
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) and abs(v) < 1 else
                                      f"{v:.2f}" if isinstance(v, float) else str(v))

    name_w = max([len("method")] + [len(n) for n, _ in rows])
    widths = [max(len(h), 8) for _, h in columns]
    lines = ["  ".join(["method".ljust(name_w)] + [h.rjust(w) for (_, h), w in zip(columns, widths)])]
    for name, m in rows:
        lines.append("  ".join([name.ljust(name_w)] + [cell(m.get(k)).rjust(w) for (k, _), w in zip(columns, widths)]))
    return "\n".join(lines)


def category_table(rows: Sequence[tuple[str, Mapping[str, Any]]], key: str = "error_percent_per_category") -> str:
    cats = sorted({c for _, m in rows for c in (m.get(key) or {})})
    if not cats:
        return ""
    return metrics_table([(n, m.get(key) or {}) for n, m in rows], [(c, c) for c in cats])


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%;image-rendering:pixelated}
.note{color:#555;font-size:90%}"""


def write_report(path: str | Path, title: str, sections: Sequence[tuple[str, str]], summary: Mapping[str, Any]) -> Path:
    """Write ``index.html`` (``sections`` are (heading, html) pairs) and ``summary.json``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_CSS}</style>",
             f"<h1>{html.escape(title)}</h1>"]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    (path / "index.html").write_text("\n".join(parts))
    (path / "summary.json").write_text(json.dumps(summary, indent=1))
    return path / "index.html"
