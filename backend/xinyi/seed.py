"""Demo data for the local walkthrough: created once, safe to run again.

An empty record explains no score, so the demo citizens get records: one with a good record,
one with a minor default they can repair, one under a black-list entry with a legal basis.
The records go through the data providers' own service (``records.service.submit_batch``)
from a demo provider, so scores, lists and next steps are computed as in production. A
partner of every kind, a volunteer organisation and the provider come with API keys.

:func:`seed_demo` returns one line per login saying what it is for. Running it again creates
nothing and prints the same logins, except that an API key exists only as a hash once made:
it is printed the first time only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session
from stdnum.cn import ric

from xinyi.auth.accounts import create_client, create_staff
from xinyi.auth.principal import Principal
from xinyi.auth.service import client_named, phone_taken
from xinyi.citizens.service import register
from xinyi.deps import Deps
from xinyi.partner_kinds import PartnerKind
from xinyi.pii import PhoneNumber
from xinyi.records.service import submit_batch
from xinyi.scoring.service import benefit_rules
from xinyi.timeutil import china_today
from xinyi.uow import UnitOfWork

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed for the local demo on purpose


@dataclass(frozen=True)
class DemoCitizen:
    key: str  # names the records' provider refs (never the phone: refs may be logged)
    phone: str
    name: str
    id17: str
    shows: str
    records: tuple[tuple[str, int, str], ...]  # (catalogue code, days ago, summary)


DEMO_CITIZENS = (
    DemoCitizen("good", "13800138000", "张三", "110101199003071",
                "good record: five positive records, score 700 (AA), benefits granted", (
                    ("volunteer.model", 90, "2026年度优秀志愿者（示范数据）"),
                    ("blood.donation_award", 150, "全国无偿献血奉献奖（示范数据）"),
                    ("tax.grade_a", 60, "纳税信用A级（示范数据）"),
                    ("library.good_reader", 30, "连续12个月按期归还（示范数据）"),
                    ("utility.on_time", 45, "水电气费按时缴纳（示范数据）"))),
    DemoCitizen("minor", "13900139000", "李四", "310104198512202",
                "minor default: a library book returned late (-5, score 595), repairable "
                "now by volunteering (see next_steps)", (
                    ("library.overdue_default", 20, "图书经催告逾期未还（示范数据）"),)),
    DemoCitizen("black", "13600136000", "王五", "120101198807154",
                "black-list entry with a legal basis (rail travel restricted): score 610, but "
                "benefits withheld, reason black_list_entry", (
                    ("transport.rail_restricted", 30, "限制乘坐火车（示范数据）"),
                    ("redlist.model_worker", 200, "劳动模范（示范数据）"),
                    ("volunteer.model", 120, "优秀志愿者（示范数据）"))),
)
DEMO_STAFF = (
    ("13700137000", "operator", "manages partners, orgs, providers, their keys and the "
                                "catalogue (/v1/admin)"),
    ("13700137001", "reviewer", "reads the catalogue, the red and black lists and statistics"),
    ("13700137002", "auditor", "reads partners, orgs, providers, lists and statistics"),
)
DEMO_PARTNERS: dict[PartnerKind, str] = {
    PartnerKind.LIBRARY: "示范图书馆 Demo Library",
    PartnerKind.BIKE: "示范共享单车 Demo Bike Share",
    PartnerKind.HOSPITAL: "示范医院 Demo Hospital",
    PartnerKind.HOTEL: "示范酒店 Demo Hotel",
    PartnerKind.SCENIC: "示范景区 Demo Scenic Area",
    PartnerKind.CAMPUS: "示范大学体育馆 Demo Campus Sports Hall",
    PartnerKind.GOVERNMENT: "示范政务服务中心 Demo Government Service Centre",
    PartnerKind.OTHER: "示范便民商户 Demo Merchant",
}
DEMO_ORG = "示范志愿者协会 Demo Volunteer Association"
DEMO_PROVIDER = "示范数据报送单位 Demo Data Provider"


def demo_id_number(first17: str) -> str:
    body = first17.ljust(17, "0")[:17]
    return body + ric.calc_check_digit(body + "0")


class _Seeder:
    def __init__(self, session: Session, deps: Deps) -> None:
        self.session, self.deps = session, deps
        self.lines: list[str] = []

    def login(self, role: str, phone: str, shows: str) -> None:
        self.lines.append(f"{role:<9} phone {phone}  password {DEMO_PASSWORD}  {shows}")

    def client(self, client_type: str, name: str, kind: str | None,
               shows: str) -> Principal:
        """The API-key principal named ``name``, made if missing; its key shown once."""
        existing = client_named(self.session, client_type, name)
        if existing is not None:
            key = (f"its API key was printed at first seeding; add one with "
                   f"POST /v1/admin/{client_type}s/{existing.id}/keys")
            client_id = existing.id
        else:
            # The demo provider pushes the demo records of several catalogue items.
            grants = ["*"] if client_type == "provider" else None
            view = create_client(self.session, self.deps, client_type=client_type,
                                 name=name, kind=kind, catalogue_codes=grants)
            assert view.api_key is not None
            key, client_id = f"api key {view.api_key.api_key} (shown once)", view.id
        label = f"{client_type} {kind}" if kind else client_type
        self.lines.append(f"{label:<18} {name}: {shows}; {key}")
        return Principal(kind=client_type, id=client_id, client_kind=kind, client_name=name)

    def citizens(self) -> None:
        for person in DEMO_CITIZENS:
            if not phone_taken(self.session, self.deps, PhoneNumber.parse(person.phone)):
                register(self.session, self.deps, client_address="seed-demo",
                         phone=person.phone, password=DEMO_PASSWORD, name=person.name,
                         id_number=demo_id_number(person.id17))
            self.login("citizen", person.phone, person.shows)

    def records(self, provider: Principal) -> None:
        """Pushed like any provider's batch; a second run finds each ref already there."""
        today = china_today(self.deps.clock())
        items = [{"ref": f"demo-{person.key}-{n}", "id_number": demo_id_number(person.id17),
                  "catalogue_code": code, "summary": summary,
                  "occurred_at": (today - timedelta(days=days_ago)).isoformat()}
                 for person in DEMO_CITIZENS
                 for n, (code, days_ago, summary) in enumerate(person.records)]
        for result in submit_batch(self.session, self.deps, provider, items):
            problem = (result.problem or {}).get("code")
            # The same ref pushed on a later day differs in its date: it is the same record.
            if problem not in (None, "duplicate_reference"):
                self.lines.append(f"demo record {result.ref} not created: {problem}")


def seed_demo(deps: Deps) -> list[str]:
    """Create the demo data that is missing, in one unit; the lines to print."""
    with UnitOfWork(deps.db.sessions) as uow:
        seeder = _Seeder(uow.session, deps)
        seeder.citizens()
        for phone, role, shows in DEMO_STAFF:
            if not phone_taken(uow.session, deps, PhoneNumber.parse(phone)):
                create_staff(uow.session, deps, phone=phone, password=DEMO_PASSWORD, role=role)
            seeder.login(role, phone, shows)
        for kind, name in DEMO_PARTNERS.items():
            offered = [r.code for r in benefit_rules(uow.session) if r.partner_kind == kind]
            seeder.client("partner", name, kind, f"verifies {', '.join(offered)}" if offered
                          else "offers no benefit; may ask citizens for consents")
        seeder.client("org", DEMO_ORG, None, "a volunteer organisation (API key)")
        provider = seeder.client("provider", DEMO_PROVIDER, None,
                                 "pushed the demo citizens' records")
        seeder.records(provider)
        uow.commit()
    return seeder.lines
