"""The partner kinds that have an adapter: the one place a new kind is added.

A kind is a module declaring ``KIND`` (:class:`xinyi.adapters.base.KindSpec`); listing it
here gives it its routes under ``/v1/adapters/<kind>/…`` and its events in the catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from xinyi.adapters import bike, hospital, hotel, library, scenic
from xinyi.adapters.base import KindSpec
from xinyi.partner_kinds import PARTNER_KINDS

KINDS: Final[Mapping[str, KindSpec]] = MappingProxyType({
    spec.kind: spec for spec in (library.KIND, bike.KIND, hospital.KIND, hotel.KIND,
                                 scenic.KIND)})

for _kind in KINDS:
    if _kind not in PARTNER_KINDS:  # a typo here would serve partners no one can create
        raise ValueError(f"adapter for unknown partner kind {_kind!r}")
