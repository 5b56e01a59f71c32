"""The quote as a PDF (reportlab): A4, the built-in CID font ``STSong-Light`` so Chinese renders without
shipping a font file; the same content as the HTML print view."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from flask_babel import gettext as _

from . import quotes

FONT = "STSong-Light"


def _font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def _money(value) -> str:
    return f"{value:,.2f}"


def _number(value) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def render_pdf(quote) -> bytes:
    """The PDF bytes of ``quote`` in the current language."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = _font()
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=13)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=11)
    title = ParagraphStyle("title", parent=body, fontSize=16, leading=22, spaceAfter=6)

    def para(text, style=body):
        return Paragraph(escape(str(text or "")).replace("\n", "<br/>"), style)

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm, title=f"{_('Quote')} {quote.number}", author="Mosaic CRM")
    story = [para(f"{_('Quote')} {quote.number} · v{quote.version}", title)]
    meta = [
        (_("Customer"), quote.customer.name if quote.customer else ""),
        (_("Contact"), quote.contact.name if quote.contact else ""),
        (_("Quote date"), quote.quote_date.isoformat()),
        (_("Valid until"), quote.valid_until.isoformat() if quote.valid_until else ""),
        (_("Currency"), quote.currency),
        (_("Status"), quotes.status_label(quotes.effective_status(quote))),
    ]
    meta_table = Table([[para(k, small), para(v)] for k, v in meta], colWidths=[30 * mm, 120 * mm])
    meta_table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [meta_table, Spacer(1, 6 * mm)]

    header = [_("#"), _("Item"), _("Quantity"), _("Unit"), _("Unit price"), _("Discount") + " %", _("Tax rate") + " %",
              _("Amount")]
    rows = [[para(h, small) for h in header]]
    for number, line in enumerate(quote.lines, start=1):
        rows.append([para(number), para(line.description), para(_number(line.quantity)), para(line.unit),
                     para(_money(line.unit_price)), para(_number(line.discount_percent)),
                     para(_number(line.tax_percent)), para(_money(line.amount))])
    widths = [8 * mm, 58 * mm, 18 * mm, 14 * mm, 24 * mm, 18 * mm, 14 * mm, 26 * mm]
    lines_table = Table(rows, colWidths=widths, repeatRows=1)
    lines_table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.92, 0.92, 0.92)),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    story += [lines_table, Spacer(1, 4 * mm)]
    totals = []
    if quote.discount_percent:
        totals.append((_("Quote discount") + " %", _number(quote.discount_percent)))
    totals += [(_("Subtotal (before tax)"), _money(quote.subtotal)), (_("Tax"), _money(quote.tax_total)),
               (_("Total"), f"{quote.currency} {_money(quote.total)}")]
    totals_table = Table([[para(k), para(v)] for k, v in totals], colWidths=[50 * mm, 40 * mm], hAlign="RIGHT")
    story += [totals_table, Spacer(1, 6 * mm)]
    if quote.terms:
        story += [para(_("Terms"), small), para(quote.terms), Spacer(1, 4 * mm)]
    if quote.notes:
        story += [para(_("Remarks"), small), para(quote.notes)]
    doc.build(story)
    return buffer.getvalue()
