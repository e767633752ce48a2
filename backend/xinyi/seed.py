"""Demo data for the local walkthrough: created once, safe to run again."""

from __future__ import annotations

from stdnum.cn import ric

from xinyi.auth.accounts import create_client, create_staff
from xinyi.auth.service import client_named, phone_taken
from xinyi.citizens.service import register
from xinyi.deps import Deps
from xinyi.pii import PhoneNumber
from xinyi.uow import UnitOfWork

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed for the local demo on purpose
DEMO_CITIZENS = [
    ("13800138000", "张三", "110101199003071"),
    ("13900139000", "李四", "310104198512202"),
]
DEMO_STAFF = [("13700137000", "operator"), ("13700137001", "reviewer"), ("13700137002", "auditor")]


def demo_id_number(first17: str) -> str:
    body = first17.ljust(17, "0")[:17]
    return body + ric.calc_check_digit(body + "0")


def seed_demo(deps: Deps) -> list[str]:
    lines: list[str] = []
    with UnitOfWork(deps.db.sessions) as uow:
        session = uow.session

        def exists(phone: str) -> bool:
            return phone_taken(session, deps, PhoneNumber.parse(phone))

        for phone, name, id17 in DEMO_CITIZENS:
            if not exists(phone):
                register(session, deps, client_address="seed-demo", phone=phone,
                         password=DEMO_PASSWORD, name=name,
                         id_number=demo_id_number(id17))
            lines.append(f"citizen   phone {phone}  password {DEMO_PASSWORD}")
        for phone, role in DEMO_STAFF:
            if not exists(phone):
                create_staff(session, deps, phone=phone, password=DEMO_PASSWORD, role=role)
            lines.append(f"{role:<9} phone {phone}  password {DEMO_PASSWORD}")
        if client_named(session, "partner", "示范图书馆 Demo Library"):
            lines.append("partner   示范图书馆 Demo Library: its API key was printed at first"
                         " seeding; add one with POST /v1/admin/partners/{id}/keys")
        else:
            view = create_client(session, deps, client_type="partner",
                                 name="示范图书馆 Demo Library", kind="library")
            assert view.api_key is not None
            lines.append(f"partner   示范图书馆 Demo Library  api key {view.api_key.api_key}"
                         " (shown once)")
        uow.commit()
    return lines
