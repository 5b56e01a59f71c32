"""core.charts: every kind renders valid, accessible SVG that carries its values, escapes its text, and the
``core/charts.html`` macro wraps it with the numbers as a table."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from flask import render_template_string

from core import charts

NS = "{http://www.w3.org/2000/svg}"


def _parse(chart):
    root = ET.fromstring(str(chart.svg()))
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    titles = {el.get("id"): el.text for el in root if el.tag in (f"{NS}title", f"{NS}desc")}
    assert title_id in titles and desc_id in titles
    return root, titles[title_id], titles[desc_id]


def _shapes(root, cls):
    return [el for el in root.iter() if el.get("class") == cls]


def _tips(root, cls):
    return [el.find(f"{NS}title").text for el in _shapes(root, cls)]


def test_every_kind_renders_valid_svg_with_its_values(mosaic_app_factory):
    app = mosaic_app_factory(initialise_db=False)
    with app.test_request_context():
        bar = charts.BarChart(title="Leads <by> source & more", labels=["Website", "Event", "微信"],
                              values=[12, 0, 3])
        root, title, desc = _parse(bar)
        assert title == "Leads <by> source & more"  # escaped in the markup, intact once parsed
        assert [el.get("data-value") for el in _shapes(root, "bar")] == ["12", "0", "3"]
        assert _tips(root, "bar") == ["Website: 12", "Event: 0", "微信: 3"]
        heights = [float(el.get("height")) for el in _shapes(root, "bar")]
        assert heights[0] > heights[2] > heights[1] == 0
        assert "Website" in desc and "12" in desc

        stacked = charts.StackedBarChart(title="By month", categories=["2025-12", "2026-01"],
                                         series=[("Website", [1, 2]), ("Event", [0, 2])])
        root, _t, _d = _parse(stacked)
        assert sorted(_tips(root, "segment")) == ["Event · 2026-01: 2", "Website · 2025-12: 1",
                                                  "Website · 2026-01: 2"]
        texts = [el.text for el in root.iter(f"{NS}text")]
        assert "4" in texts and "1" in texts  # the totals above the bars
        assert stacked.rows()[1] == [["2025-12", "1", "0", "1"], ["2026-01", "2", "2", "4"]]

        line = charts.LineChart(title="Rate", labels=["Jan", "Feb", "Mar"],
                                series=[("Rate", [0.25, None, 0.5])], fmt=charts.fmt_percent, top_value=1.0)
        root, _t, _d = _parse(line)
        assert _tips(root, "point") == ["Rate · Jan: 25.0%", "Rate · Mar: 50.0%"]  # None is a gap
        ys = [float(el.get("cy")) for el in _shapes(root, "point")]
        assert ys[0] > ys[1]

        funnel = charts.FunnelChart(title="Funnel", stages=[("Leads", 100), ("Qualified", 40), ("Won", 10)])
        root, _t, _d = _parse(funnel)
        widths = [float(el.get("width")) for el in _shapes(root, "stage")]
        assert widths[0] > widths[1] > widths[2]
        assert widths[1] / widths[0] == pytest.approx(0.4, rel=0.01)
        assert funnel.rows()[1][2] == ["Won", "10", "10.0%"]

        pie = charts.PieChart(title="Reasons", slices=[("No budget", 3), ("No need", 1)])
        root, _t, _d = _parse(pie)
        assert _tips(root, "slice") == ["No budget: 3 (75.0%)", "No need: 1 (25.0%)"]
        whole = charts.PieChart(title="One", slices=[("Only", 5)])
        root, _t, _d = _parse(whole)
        assert root.find(f".//{NS}circle").get("data-value") == "5"


def test_empty_and_hostile_input(mosaic_app_factory):
    app = mosaic_app_factory(initialise_db=False)
    with app.test_request_context():
        for chart in (charts.BarChart(title="Empty"), charts.StackedBarChart(title="Empty"),
                      charts.LineChart(title="Empty"), charts.FunnelChart(title="Empty"),
                      charts.PieChart(title="Empty", slices=[("Zero", 0)])):
            root, _t, _d = _parse(chart)
            assert "No data" in [el.text for el in root.iter(f"{NS}text")]
        evil = charts.BarChart(title="</svg><script>alert(1)</script>", labels=['"><script>'],
                               values=[float("nan")])
        root, title, _d = _parse(evil)
        assert title == "</svg><script>alert(1)</script>"
        assert not list(root.iter("script")) and not list(root.iter(f"{NS}script"))
        negative = charts.BarChart(title="Neg", labels=["a"], values=[-5])
        root, _t, _d = _parse(negative)
        assert float(_shapes(root, "bar")[0].get("height")) == 0


def test_nice_max_and_formats():
    assert [charts.nice_max(v) for v in (0, 3, 7, 10, 11, 240, 0.3)] == [1, 5, 10, 10, 20, 500, 0.5]
    assert charts.fmt_number(1234) == "1,234" and charts.fmt_number(2.5) == "2.5"
    assert charts.fmt_percent(0.4286) == "42.9%"


def test_figure_macro_wraps_the_chart_and_its_table(mosaic_app_factory):
    app = mosaic_app_factory(initialise_db=False)
    with app.test_request_context():
        chart = charts.BarChart(title="Leads", labels=["Website"], values=[7])
        html = render_template_string('{% import "core/charts.html" as c %}{{ c.figure(chart, caption="Cap") }}',
                                      chart=chart)
        assert html.count("<svg") == 1 and "<figcaption" in html and "Cap" in html
        assert '<th scope="row">Website</th><td>7</td>' in html
        bare = render_template_string('{% import "core/charts.html" as c %}{{ c.figure(chart, table=False) }}',
                                      chart=chart)
        assert "<table" not in bare and "<svg" in bare
