"""Small server-side SVG charts (no internet at the county: no CDN chart library).

Returns markup strings; every label is escaped, so node-supplied text cannot inject.
"""

from __future__ import annotations

from html import escape

W, H, PAD = 640, 180, 32


def _frame(body: str, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" class="chart" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
            f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 8}" y2="{H - PAD}" stroke="#999"/>{body}</svg>')


def line_chart(points: list[tuple[float, float]], title: str, *, y_max: float | None = None,
               unit: str = "") -> str:
    """Points (x, y) with x increasing (e.g. unix time)."""
    pts = [(x, y) for x, y in points if y is not None]
    if len(pts) < 2:
        return f'<p class="muted">{escape(title)}：数据不足</p>'
    x0, x1 = pts[0][0], pts[-1][0]
    top = y_max or max(y for _, y in pts) or 1
    sx = (W - PAD - 8) / ((x1 - x0) or 1)
    sy = (H - 2 * PAD) / top
    path = " ".join(f"{PAD + (x - x0) * sx:.1f},{H - PAD - y * sy:.1f}" for x, y in pts)
    body = (f'<polyline fill="none" stroke="#c0392b" stroke-width="2" points="{path}"/>'
            f'<text x="{PAD}" y="{PAD - 10}" font-size="12">{escape(title)}（最高 {top:g}{escape(unit)}）</text>')
    return _frame(body, title)


def bar_chart(bars: list[tuple[str, float]], title: str, *, unit: str = "") -> str:
    if not bars:
        return f'<p class="muted">{escape(title)}：暂无数据</p>'
    top = max(v for _, v in bars) or 1
    bw = (W - PAD - 8) / len(bars)
    parts = []
    for i, (label, v) in enumerate(bars):
        h = (H - 2 * PAD) * v / top
        x = PAD + i * bw
        parts.append(f'<rect x="{x + 1:.1f}" y="{H - PAD - h:.1f}" width="{max(bw - 2, 1):.1f}" height="{h:.1f}" '
                     f'fill="#2e86c1"><title>{escape(label)}: {v:g}{escape(unit)}</title></rect>')
        if len(bars) <= 16:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">'
                         f'{escape(label)}</text>')
    parts.append(f'<text x="{PAD}" y="{PAD - 10}" font-size="12">{escape(title)}（最高 {top:g}{escape(unit)}）</text>')
    return _frame("".join(parts), title)
