"""Clock helpers: UTC inside, Asia/Shanghai at the edges (a citizen's "today")."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


def china_today(now: datetime) -> date:
    return now.astimezone(CHINA).date()
