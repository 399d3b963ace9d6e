"""Engagement trend charts: a PNG for emails (matplotlib) and an SVG for the dashboard (no JavaScript)."""

from __future__ import annotations

import io
from html import escape

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

BLUE = "#1d4ed8"
INK = "#111827"
GRID = "#d1d5db"


def runs(rates: list[float | None]) -> list[list[tuple[int, float]]]:
    """The unbroken stretches of (index, rate): weeks without digests split the line."""
    found: list[list[tuple[int, float]]] = [[]]
    for index, value in enumerate(rates):
        if value is None:
            if found[-1]:
                found.append([])
        else:
            found[-1].append((index, value))
    return [run for run in found if run]


def trend_png(weeks: list[str], rates: list[float | None]) -> bytes:
    """A small line chart on its own white card, so it reads the same in light and dark mail clients."""
    figure, axes = pyplot.subplots(figsize=(5.6, 2.2), dpi=150)
    figure.patch.set_facecolor("white")
    axes.set_facecolor("white")
    for run in runs(rates):  # a week without digests (a break) is a gap in the line
        axes.plot([i for i, _ in run], [r for _, r in run], color=BLUE, linewidth=2.2, marker="o", markersize=4)
    axes.set_ylim(0, 1.05)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axes.set_xticks(range(len(weeks)), weeks, fontsize=8, color=INK)
    axes.tick_params(axis="y", labelsize=8, colors=INK)
    axes.grid(axis="y", color=GRID, linewidth=0.6)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.set_title("Team engagement by week (the week's Monday)", fontsize=9, color=INK, loc="left")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    pyplot.close(figure)
    return buffer.getvalue()


def trend_svg(weeks: list[str], rates: list[float | None], *, width: int = 560, height: int = 160) -> str:
    """The same trend as inline SVG, with a title for screen readers."""
    left, bottom, top = 36, 22, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    step = plot_w / max(1, len(weeks) - 1)
    points = [(left + i * step, top + plot_h * (1 - r)) for i, r in enumerate(rates) if r is not None]
    labels = "".join(
        f'<text x="{left + i * step:.1f}" y="{height - 6}" font-size="10" text-anchor="middle" fill="#374151">'
        f"{escape(w)}</text>"
        for i, w in enumerate(weeks)
    )
    grid = "".join(
        f'<line x1="{left}" x2="{width - 10}" y1="{top + plot_h * (1 - f):.1f}" y2="{top + plot_h * (1 - f):.1f}" '
        f'stroke="#e5e7eb"/><text x="{left - 4}" y="{top + plot_h * (1 - f) + 3:.1f}" font-size="10" '
        f'text-anchor="end" fill="#374151">{int(f * 100)}%</text>'
        for f in (0, 0.5, 1)
    )
    lines = "".join(
        '<polyline points="' + " ".join(f"{left + i * step:.1f},{top + plot_h * (1 - r):.1f}" for i, r in run)
        + f'" fill="none" stroke="{BLUE}" stroke-width="2"/>' for run in runs(rates))
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{BLUE}"/>' for x, y in points)
    summary = ", ".join(f"{w}: {'no digests' if r is None else f'{r:.0%}'}" for w, r in zip(weeks, rates, strict=True))
    return (
        f'<svg role="img" aria-labelledby="trend-title" viewBox="0 0 {width} {height}" width="100%" style="max-width: 720px" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="trend-title">Engagement by week: {escape(summary)}</title>'
        f'{grid}{lines}{dots}{labels}</svg>'
    )
