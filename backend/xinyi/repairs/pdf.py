"""The written decision (信用修复决定书) as a PDF, in Chinese, with ReportLab's built-in CJK
font (Adobe's STSong-Light, which every PDF reader has: nothing is embedded)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

_TITLE = ParagraphStyle("title", fontName=FONT, fontSize=18, leading=26, alignment=1)
_BODY = ParagraphStyle("body", fontName=FONT, fontSize=11, leading=18, wordWrap="CJK")


@dataclass(frozen=True)
class DecisionText:
    number: str
    applicant: str
    record_name: str
    record_code: str
    severity: str
    occurred_on: date
    basis: str
    received_on: date
    due_on: date
    approved: bool
    reason: str
    decided_on: date
    reapply: str | None


def _zh(d: date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def lines(t: DecisionText) -> list[str]:
    """The decision's paragraphs (also what a test looks for in the rendered file)."""
    out = [
        f"决定书编号：{t.number}",
        f"申请人：身份证号 {t.applicant}",
        f"涉及信用信息：{t.record_name}（{t.record_code}），失信程度：{t.severity}，"
        f"发生日期：{_zh(t.occurred_on)}",
        f"修复方式：{t.basis}",
        f"受理日期：{_zh(t.received_on)}；办理时限：{_zh(t.due_on)}前（3个工作日）",
        "决定：" + ("准予信用修复。" if t.approved else "不予信用修复。"),
        f"理由：{t.reason}",
    ]
    if t.approved:
        out.append("该信用信息已归档保存，不再公示，不再向合作机构提供，"
                   "不再计入信用评分，也不再作为失信惩戒的依据。")
    elif t.reapply:
        out.append(f"重新申请：{t.reapply}")
    out.append(f"决定日期：{_zh(t.decided_on)}")
    out.append("信易+ 信用修复复核")
    return out


def render(t: DecisionText) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm,
                            topMargin=20 * mm, bottomMargin=20 * mm,
                            title=f"信用修复决定书 {t.number}", author="xinyi+",
                            subject=f"Credit repair decision {t.number}",
                            invariant=True)
    story: list[Flowable] = [Paragraph("信用修复决定书", _TITLE), Spacer(1, 8 * mm)]
    for line in lines(t):
        story += [Paragraph(escape(line), _BODY), Spacer(1, 2 * mm)]
    doc.build(story)
    return buffer.getvalue()
