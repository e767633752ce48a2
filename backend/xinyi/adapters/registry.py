"""The partner kinds that have an adapter: the one place a new kind is added.

A kind is a module declaring ``KIND`` (:class:`xinyi.adapters.base.KindSpec`); listing it
here gives it its routes under ``/v1/adapters/<kind>/…`` and its events in the catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xinyi.adapters import bike, hospital, hotel, library, scenic
from xinyi.adapters.base import KindSpec
from xinyi.adapters.models import AdapterRecord
from xinyi.partner_kinds import PARTNER_KINDS

KINDS: Final[Mapping[str, KindSpec]] = MappingProxyType({
    spec.kind: spec for spec in (library.KIND, bike.KIND, hospital.KIND, hotel.KIND,
                                 scenic.KIND)})

for _kind in KINDS:
    if _kind not in PARTNER_KINDS:  # a typo here would serve partners no one can create
        raise ValueError(f"adapter for unknown partner kind {_kind!r}")


def sessionless_uses(session: Session) -> list[tuple[str, str, int, int, int]]:
    """Benefits granted without a session (a scenic entry's discount, final at once), per
    kind: ``(benefit code, kind, uses, amount_fen, waived_fen)``, one GROUP BY (the credit
    office's statistics)."""
    r = AdapterRecord
    return sorted((KINDS[kind].benefit, kind, int(n), int(amount or 0), int(waived or 0))
                  for kind, n, amount, waived in session.execute(
                      select(r.kind, func.count(), func.sum(r.amount_fen), func.sum(r.waived_fen))
                      .where(r.session_id.is_(None), r.waived_fen > 0).group_by(r.kind))
                  if kind in KINDS)
