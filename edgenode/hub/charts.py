"""Charts for staff pages, drawn on the server by pygal as inline SVG (docs/hub.md, "Charts").

No JavaScript and no internet at the county: pygal's tooltip script is switched off
(``js=[]``), so a chart is a plain SVG with axes, dated ticks, units and a Chinese
title, which prints and opens anywhere.  Every label is node-supplied text at worst;
pygal escapes it as XML.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import re
from html import escape

import pygal
from pygal.style import Style

FONT = '"Noto Sans CJK SC", "Noto Sans CJK", "Microsoft YaHei", sans-serif'
STYLE = Style(font_family=FONT, background="#fff", plot_background="#fff", foreground="#333",
              foreground_strong="#222", foreground_subtle="#888", colors=("#c0392b", "#2e86c1", "#27ae60"),
              title_font_size=15, label_font_size=11, major_label_font_size=11, legend_font_size=11,
              value_font_size=10, tooltip_font_size=11, no_data_font_size=14)


def _config(title: str, x_title: str, y_title: str) -> dict:
    return dict(title=title, x_title=x_title, y_title=y_title, style=STYLE, js=[], disable_xml_declaration=True,
                show_legend=False, width=720, height=300, margin=12, no_data_text="暂无数据", explicit_size=False,
                print_values=False, truncate_label=-1, css=[
                    "file://style.css", "file://graph.css", "inline:.title{font-weight:bold}"])


def _svg(chart) -> str:
    # pygal adds a <script> with its tooltip settings even with js=[]; without the script it is dead weight.
    svg = re.sub(r"<script\b.*?</script>", "", chart.render(is_unicode=True), flags=re.S)
    return f'<figure class="chart">{svg}</figure>'


def bar_chart(bars: list[tuple[str, float]], title: str, *, unit: str = "", x_title: str = "") -> str:
    """One bar per label (e.g. days or months), the y axis in ``unit``."""
    if not bars:
        return note(f"{title}：暂无数据")
    chart = pygal.Bar(**_config(title, x_title, unit), x_label_rotation=0 if len(bars) <= 12 else 45)
    chart.x_labels = [label for label, _ in bars]
    chart.x_labels_major = [label for i, (label, _) in enumerate(bars) if i % max(1, len(bars) // 10) == 0]
    chart.show_minor_x_labels = False
    chart.add(title, [v for _, v in bars])
    return _svg(chart)


def time_chart(points: list[tuple[float, float | None]], title: str, *, y_title: str, offset_hours: float,
               zone: str, y_max: float | None = None, dots: bool = False) -> str:
    """A line over unix times, ticks dated in the statistics time zone (named in the x title)."""
    tz = timezone(timedelta(hours=offset_hours))
    pts = sorted((datetime.fromtimestamp(x, tz).replace(tzinfo=None), y) for x, y in points if y is not None)
    if len(pts) < 2:
        return note(f"{title}：心跳记录还不够两次，暂时画不出")
    span = (pts[-1][0] - pts[0][0]).total_seconds() if len(pts) > 1 else 0
    fmt = "%m-%d %H:%M" if span < 3 * 86400 else "%m-%d"
    cfg = _config(title, f"日期（{zone}）", y_title)
    chart = pygal.DateTimeLine(**cfg, x_value_formatter=lambda d: d.strftime(fmt), x_label_rotation=30,
                               show_dots=dots or len(pts) < 40, dots_size=2, fill=False,
                               range=(0, y_max) if y_max else None, include_x_axis=True)
    chart.add(title, pts)
    return _svg(chart)


def note(text: str) -> str:
    return f'<p class="muted">{escape(text)}</p>'
