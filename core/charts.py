"""Charts drawn on the server as inline SVG: no JavaScript library, nothing fetched from a CDN.

Reports and dashboard widgets of any addon build a chart object and put it in a template, where it renders
itself (it has ``__html__``); :file:`core/templates/core/charts.html` wraps it in a ``<figure>`` with the
same numbers as a table for readers who cannot see the picture::

    from core import charts

    chart = charts.StackedBarChart(title=_("Leads by source"), categories=["2026-01", "2026-02"],
                                   series=[("Website", [3, 5]), ("Event", [1, 0])])

    {% import "core/charts.html" as charts %}
    {{ charts.figure(chart) }}

Every chart is an ``<svg role="img">`` labelled by its ``<title>`` and a ``<desc>`` listing the values, and
every bar, segment, point and slice carries a ``<title>`` with its label and value (a tooltip, and what a
screen reader announces). Sizes are a ``viewBox``: the picture scales with the page. Colours come from one
palette chosen to stay apart for the common colour-vision deficiencies.

Kinds: :class:`BarChart`, :class:`StackedBarChart`, :class:`LineChart`, :class:`FunnelChart`,
:class:`PieChart`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import pgettext
from markupsafe import Markup, escape

#: Okabe–Ito-like palette, readable with colour-vision deficiencies
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000",
           "#8da0cb", "#a6761d")
FONT = 'font-family="inherit" font-size="12" fill="#1f2933"'
_ids = itertools.count(1)


def fmt_number(value) -> str:
    """``1234`` → ``1,234``; ``2.5`` → ``2.5`` (one decimal at most)."""
    if value is None:
        return ""
    if isinstance(value, float | Decimal) and not math.isfinite(value):
        return "—"
    if isinstance(value, float | Decimal) and value != int(value):
        return f"{float(value):,.1f}"
    return f"{int(value):,}"


def fmt_percent(value) -> str:
    """A ratio (``0.25``) as a percentage (``25.0%``)."""
    if value is None or not math.isfinite(float(value)):
        return ""
    return f"{float(value) * 100:.1f}%"


def nice_max(value: float) -> float:
    """The smallest 1/2/5 × 10ⁿ at or above ``value``: the top of a readable axis."""
    if value <= 0:
        return 1
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        top = step * 10**exponent
        if top >= value:
            return top
    return 10 ** (exponent + 1)  # pragma: no cover - the loop always returns


def _num(value) -> float:
    try:
        number = float(value or 0)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def _short(text, limit: int = 14) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


@dataclass
class Chart:
    """What every chart has: a title, a size (the viewBox) and a number format."""

    title: str = ""
    width: int = 640
    height: int = 280
    fmt: Callable = fmt_number

    def rows(self) -> tuple[list, list[list]]:
        """``(header, rows)``: the chart's numbers as a table (the figure's accessible fallback)."""
        raise NotImplementedError

    def body(self) -> list[str]:
        raise NotImplementedError

    def is_empty(self) -> bool:
        raise NotImplementedError

    def description(self) -> str:
        header, rows = self.rows()
        parts = []
        for row in rows:
            cells = [f"{h} {c}" for h, c in zip(header[1:], row[1:], strict=False)]
            parts.append(f"{row[0]}: " + ", ".join(cells))
        return "; ".join(parts)

    def svg(self) -> Markup:
        uid = f"chart{next(_ids)}"
        body = self.body() if not self.is_empty() else [
            f'<text x="{self.width / 2}" y="{self.height / 2}" text-anchor="middle" {FONT}>'
            f"{escape(_('No data'))}</text>"
        ]
        return Markup(
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {self.width} '
            f'{self.height}" width="100%" style="max-width:{self.width}px;height:auto" '
            f'aria-labelledby="{uid}-title {uid}-desc">'
            f'<title id="{uid}-title">{escape(self.title)}</title>'
            f'<desc id="{uid}-desc">{escape(self.description())}</desc>'
            + "".join(body)
            + "</svg>"
        )

    def __html__(self) -> str:
        return str(self.svg())


# -- axes ---------------------------------------------------------------------------------------------
@dataclass
class _Plot:
    """The plotting area of the charts with a value axis: margins, scale and grid lines."""

    left: float
    top: float
    width: float
    height: float
    top_value: float
    slanted: bool = False

    def y(self, value: float) -> float:
        return self.top + self.height - (value / self.top_value) * self.height

    def grid(self, fmt: Callable) -> list[str]:
        out = []
        for k in range(5):
            value = self.top_value * k / 4
            y = self.y(value)
            out.append(f'<line x1="{_f(self.left)}" x2="{_f(self.left + self.width)}" y1="{_f(y)}" y2="{_f(y)}" '
                       f'stroke="#d9e2ec"/>')
            out.append(f'<text x="{_f(self.left - 6)}" y="{_f(y + 4)}" text-anchor="end" {FONT}>'
                       f"{escape(fmt(value))}</text>")
        return out


def _text_width(text) -> float:
    """Roughly how wide ``text`` is drawn at 12px: CJK characters twice as wide as Latin ones."""
    return sum(12 if ord(c) > 0x2E80 else 6.5 for c in str(text))


def _plot(chart: Chart, top_value: float, labels: Sequence, legend: bool = False) -> _Plot:
    """The plot area; the bottom margin grows when the x labels must be slanted to fit."""
    top = 34 if legend else 14
    slot = (chart.width - 70) / max(1, len(labels))
    slanted = any(_text_width(_short(label)) > slot - 4 for label in labels)
    bottom = 40 + (34 if slanted else 0)
    return _Plot(left=56, top=top, width=chart.width - 70, height=chart.height - top - bottom,
                 top_value=nice_max(top_value), slanted=slanted)


def _x_label(plot: _Plot, x: float, text) -> str:
    y = plot.top + plot.height + 16
    if plot.slanted:  # too long for its slot: slanted, ending under its bar
        return (f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="end" transform="rotate(-35 {_f(x)} {_f(y)})" '
                f"{FONT}>{escape(_short(text))}</text>")
    return f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="middle" {FONT}>{escape(_short(text))}</text>'


def _legend(names: Sequence, width: int) -> list[str]:
    out, x = [], 56.0
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{_f(x)}" y="8" width="12" height="12" fill="{colour}"/>')
        out.append(f'<text x="{_f(x + 16)}" y="18" {FONT}>{escape(_short(name, 18))}</text>')
        x += 28 + _text_width(_short(name, 18))
        if x > width - 60:
            break
    return out


# -- kinds --------------------------------------------------------------------------------------------
@dataclass
class BarChart(Chart):
    """One bar per label."""

    labels: Sequence = ()
    values: Sequence = ()
    colour: str = PALETTE[0]

    def is_empty(self) -> bool:
        return not self.labels

    def rows(self):
        pairs = zip(self.labels, self.values, strict=False)
        return [pgettext("chart", "Label"), _("Value")], [[str(lab), self.fmt(v)] for lab, v in pairs]

    def body(self) -> list[str]:
        values = [_num(v) for v in self.values]
        plot = _plot(self, max(values, default=0), self.labels)
        out = plot.grid(self.fmt)
        slot = plot.width / len(values)
        bar = min(48.0, slot * 0.7)
        for i, (label, raw, value) in enumerate(zip(self.labels, self.values, values, strict=False)):
            x = plot.left + slot * i + (slot - bar) / 2
            y = plot.y(value)
            out.append(f'<rect class="bar" x="{_f(x)}" y="{_f(y)}" width="{_f(bar)}" '
                       f'height="{_f(plot.top + plot.height - y)}" fill="{self.colour}" data-value="{escape(raw)}">'
                       f"<title>{escape(label)}: {escape(self.fmt(raw))}</title></rect>")
            out.append(f'<text x="{_f(x + bar / 2)}" y="{_f(y - 4)}" text-anchor="middle" {FONT}>'
                       f"{escape(self.fmt(raw))}</text>")
            out.append(_x_label(plot, x + bar / 2, label))
        return out


@dataclass
class StackedBarChart(Chart):
    """One bar per category, cut into one segment per series: ``series=[(name, [value per category])]``."""

    categories: Sequence = ()
    series: Sequence = ()

    def is_empty(self) -> bool:
        return not self.categories or not self.series

    def rows(self):
        header = [_("Category"), *[str(name) for name, _v in self.series], _("Total")]
        rows = []
        for i, category in enumerate(self.categories):
            values = [vals[i] for _n, vals in self.series]
            rows.append([str(category), *[self.fmt(v) for v in values], self.fmt(sum(_num(v) for v in values))])
        return header, rows

    def body(self) -> list[str]:
        totals = [sum(_num(vals[i]) for _n, vals in self.series) for i in range(len(self.categories))]
        plot = _plot(self, max(totals, default=0), self.categories, legend=True)
        out = plot.grid(self.fmt) + _legend([name for name, _v in self.series], self.width)
        slot = plot.width / len(self.categories)
        bar = min(48.0, slot * 0.7)
        for i, category in enumerate(self.categories):
            x = plot.left + slot * i + (slot - bar) / 2
            base = 0.0
            for k, (name, vals) in enumerate(self.series):
                value = _num(vals[i])
                if value:
                    y0, y1 = plot.y(base), plot.y(base + value)
                    out.append(f'<rect class="segment" x="{_f(x)}" y="{_f(y1)}" width="{_f(bar)}" '
                               f'height="{_f(y0 - y1)}" fill="{PALETTE[k % len(PALETTE)]}" '
                               f'data-value="{escape(vals[i])}"><title>{escape(name)} · {escape(category)}: '
                               f"{escape(self.fmt(vals[i]))}</title></rect>")
                base += value
            out.append(f'<text x="{_f(x + bar / 2)}" y="{_f(plot.y(base) - 4)}" text-anchor="middle" {FONT}>'
                       f"{escape(self.fmt(totals[i]))}</text>")
            out.append(_x_label(plot, x + bar / 2, category))
        return out


@dataclass
class LineChart(Chart):
    """One line per series over the labels: ``series=[(name, [value per label])]``; ``None`` is a gap."""

    labels: Sequence = ()
    series: Sequence = ()
    top_value: float | None = None  # e.g. 1.0 for rates

    def is_empty(self) -> bool:
        return not self.labels or not self.series

    def rows(self):
        header = [pgettext("chart", "Label"), *[str(name) for name, _v in self.series]]
        return header, [[str(lab), *[self.fmt(vals[i]) for _n, vals in self.series]]
                        for i, lab in enumerate(self.labels)]

    def body(self) -> list[str]:
        peak = max((_num(v) for _n, vals in self.series for v in vals), default=0)
        plot = _plot(self, self.top_value or peak, self.labels, legend=len(self.series) > 1)
        if self.top_value:
            plot.top_value = self.top_value
        out = plot.grid(self.fmt)
        if len(self.series) > 1:
            out += _legend([name for name, _v in self.series], self.width)
        step = plot.width / max(1, len(self.labels))
        for i, label in enumerate(self.labels):
            out.append(_x_label(plot, plot.left + step * (i + 0.5), label))
        for k, (name, vals) in enumerate(self.series):
            colour = PALETTE[k % len(PALETTE)]
            points = [(plot.left + step * (i + 0.5), plot.y(_num(v)), v) for i, v in enumerate(vals) if v is not None]
            if len(points) > 1:
                path = " ".join(f"{_f(x)},{_f(y)}" for x, y, _v in points)
                out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for (x, y, raw), label in zip(points, [lab for lab, v in zip(self.labels, vals, strict=False)
                                                   if v is not None], strict=False):
                out.append(f'<circle class="point" cx="{_f(x)}" cy="{_f(y)}" r="4" fill="{colour}" '
                           f'data-value="{escape(raw)}"><title>{escape(name)} · {escape(label)}: '
                           f"{escape(self.fmt(raw))}</title></circle>")
        return out


@dataclass
class FunnelChart(Chart):
    """Stages from the widest down: ``stages=[(label, value)]``; each band's width follows its value."""

    stages: Sequence = ()

    def is_empty(self) -> bool:
        return not self.stages

    def rows(self):
        first = _num(self.stages[0][1]) if self.stages else 0
        return [_("Stage"), _("Value"), _("Of the first")], [
            [str(lab), self.fmt(v), fmt_percent(_num(v) / first) if first else ""] for lab, v in self.stages
        ]

    def body(self) -> list[str]:
        peak = max((_num(v) for _l, v in self.stages), default=0) or 1
        band = (self.height - 20) / len(self.stages)
        centre, room = self.width / 2 + 60, self.width - 140
        out = []
        for i, (label, raw) in enumerate(self.stages):
            w = max(2.0, room * _num(raw) / peak)
            y = 10 + band * i
            out.append(f'<rect class="stage" x="{_f(centre - w / 2)}" y="{_f(y)}" width="{_f(w)}" '
                       f'height="{_f(band - 4)}" fill="{PALETTE[i % len(PALETTE)]}" data-value="{escape(raw)}">'
                       f"<title>{escape(label)}: {escape(self.fmt(raw))}</title></rect>")
            out.append(f'<text x="8" y="{_f(y + band / 2 + 2)}" {FONT}>{escape(_short(label, 16))}</text>')
            out.append(f'<text x="{_f(centre)}" y="{_f(y + band / 2 + 2)}" text-anchor="middle" {FONT} '
                       f'stroke="#fff" stroke-width="3" paint-order="stroke">{escape(self.fmt(raw))}</text>')
        return out


@dataclass
class PieChart(Chart):
    """Slices of a whole: ``slices=[(label, value)]``; the legend gives each value and share."""

    slices: Sequence = ()
    height: int = 220

    def is_empty(self) -> bool:
        return not any(_num(v) for _l, v in self.slices)

    def rows(self):
        total = sum(_num(v) for _l, v in self.slices)
        return [pgettext("chart", "Label"), _("Value"), _("Share")], [
            [str(lab), self.fmt(v), fmt_percent(_num(v) / total) if total else ""] for lab, v in self.slices
        ]

    def body(self) -> list[str]:
        total = sum(_num(v) for _l, v in self.slices)
        r = (self.height - 20) / 2
        cx, cy = 10 + r, 10 + r
        out, angle = [], -math.pi / 2
        for i, (label, raw) in enumerate(self.slices):
            value = _num(raw)
            colour = PALETTE[i % len(PALETTE)]
            tip = f"<title>{escape(label)}: {escape(self.fmt(raw))} ({fmt_percent(value / total)})</title>"
            if value >= total:
                out.append(f'<circle class="slice" cx="{_f(cx)}" cy="{_f(cy)}" r="{_f(r)}" fill="{colour}" '
                           f'data-value="{escape(raw)}">{tip}</circle>')
            elif value:
                end = angle + 2 * math.pi * value / total
                large = 1 if end - angle > math.pi else 0
                x0, y0 = cx + r * math.cos(angle), cy + r * math.sin(angle)
                x1, y1 = cx + r * math.cos(end), cy + r * math.sin(end)
                out.append(f'<path class="slice" d="M{_f(cx)},{_f(cy)} L{_f(x0)},{_f(y0)} A{_f(r)},{_f(r)} 0 '
                           f'{large} 1 {_f(x1)},{_f(y1)} Z" fill="{colour}" data-value="{escape(raw)}">{tip}</path>')
                angle = end
            y = 20 + 20 * i
            if y < self.height - 10:
                out.append(f'<rect x="{_f(2 * r + 30)}" y="{y - 10}" width="12" height="12" fill="{colour}"/>')
                out.append(f'<text x="{_f(2 * r + 48)}" y="{y}" {FONT}>{escape(_short(label, 20))} '
                           f"{escape(self.fmt(raw))} ({fmt_percent(value / total)})</text>")
        return out


__all__ = ["BarChart", "Chart", "FunnelChart", "LineChart", "PieChart", "StackedBarChart", "fmt_number", "fmt_percent",
           "nice_max"]
