"""The kinds of partner (合作机构类型): one vocabulary, defined here and nowhere else.

A partner's kind decides which benefits it may verify: a benefit rule names the kind that
offers it, and a verification is refused (``benefit_not_for_partner``) when the partner's kind
differs. Two vocabularies once drifted apart (the admin API said ``scenic``, the rules said
``scenic_spot``) and three benefits could never verify; so the admin API, the benefit rules,
the database's CHECK constraint and the adapters all take their names from here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class PartnerKind(StrEnum):
    LIBRARY = "library"  # 图书馆
    BIKE = "bike"  # 共享单车
    HOSPITAL = "hospital"  # 医院
    HOTEL = "hotel"  # 酒店
    SCENIC = "scenic"  # 景区
    CAMPUS = "campus"  # 校园（体育场地）
    GOVERNMENT = "government"  # 政务服务
    OTHER = "other"  # 其他 (offers no default benefit)


PARTNER_KINDS: Final[tuple[str, ...]] = tuple(kind.value for kind in PartnerKind)


def kind_is_known(column: str) -> str:
    """SQL for a CHECK constraint: ``column`` holds one of :data:`PARTNER_KINDS`."""
    return f"{column} IN ({', '.join(repr(kind) for kind in PARTNER_KINDS)})"
