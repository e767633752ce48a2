"""Partner-kind adapters (合作机构适配): each kind's own words mapped onto sessions.

A library lends books, a bike operator unlocks rides, a hospital opens an encounter with a
credit line, a hotel checks a guest in, a scenic spot admits a visitor. Each kind is one
module here (its rules and schemas, no Flask) and one entry in :mod:`.registry`; the routes
under ``/v1/adapters/<kind>/…`` are built from the registry. Every kind does the same two
things underneath: it verifies the citizen's credential for its benefit
(:func:`xinyi.credentials.verification.verify`) and opens, closes or settles a benefit
session (:mod:`xinyi.benefits.service`). What a kind adds are its own records (books, bills,
a bike id) kept in :class:`.models.AdapterRecord`.
"""
