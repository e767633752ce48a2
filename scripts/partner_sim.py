#!/usr/bin/env python3
"""Partner simulator: every partner kind end to end against a running xinyi+ server.

    scripts/run                      # in one terminal (server and worker)
    .venv/bin/python scripts/partner_sim.py --url http://127.0.0.1:8000

It logs in as an operator (the demo operator of ``xinyi seed-demo`` unless
``XINYI_SIM_OPERATOR_PHONE``/``XINYI_SIM_OPERATOR_PASSWORD`` say otherwise), creates a partner
of every kind and a data provider through the admin API, registers fresh citizens (the
provider gives one of them the records of a higher tier) and plays, with the partner kit:

* library: verify, lend, a partial return, the rest back (fulfilled); a loan left overdue
  (the worker's sweep) and returned late;
* bike: unlock, lock with an unpaid fee (a default), settled in grace — no record;
* hospital: an encounter, bills within and beyond the credit line, settled;
* hotel: a stay checked out with unpaid charges after the benefit's grace days were set to
  0 through ``PATCH /v1/admin/benefit-rules/{code}`` (never by faking a clock): the worker
  writes the default record, and the citizen sees it and why;
* scenic: a single-use discounted entry (a second use is refused).

When the server offers ``/v1/partner/webhook-endpoints``, it also runs a webhook receiver
on 127.0.0.1 built from the kit's dispatchers, registers it for every partner and checks
that each session's events arrive, signed. It prints a timeline and exits 1 if any step
deviates from what the contract says (2 if it could not start).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "partners" / "src"))

from xinyi_partner import (  # noqa: E402  # noqa: E402
    ApiError,
    EventDispatcher,
    SessionEvent,
    WebhookError,
    bike,
    hospital,
    hotel,
    library,
)
from xinyi_partner.bike import BikeClient, BikeEvents  # noqa: E402
from xinyi_partner.hospital import BillItem, HospitalClient, HospitalEvents  # noqa: E402
from xinyi_partner.hotel import HotelClient, HotelEvents  # noqa: E402
from xinyi_partner.library import Book, LibraryClient, LibraryEvents  # noqa: E402
from xinyi_partner.scenic import ScenicClient  # noqa: E402

DEMO_OPERATOR = ("13700137000", "demo-pass-2026")  # printed by `xinyi seed-demo`
KINDS = ("library", "bike", "hospital", "hotel", "scenic")
# Records that lift a fresh citizen (600, tier A) to AA: hospital and scenic need 700.
LIFT = ("bravery.act", "redlist.model_worker", "redlist.government_award")


# What each session of a play must have told its partner, as generic names; the kind's own
# type (from the kit) or the generic ``benefit_session.<name>`` both count.
KIT_EVENTS = {"library": library.EVENTS, "bike": bike.EVENTS, "hospital": hospital.EVENTS,
              "hotel": hotel.EVENTS}


KIND_WORDS = {
    "library": {g: f"library.loan_{g}" for g in ("opened", "closed", "overdue", "defaulted",
                                                  "settled", "recorded")},
    "bike": {"opened": "bike.ride_started", "closed": "bike.ride_ended",
             "overdue": "bike.ride_overdue", "defaulted": "bike.ride_fee_unpaid",
             "settled": "bike.ride_settled", "recorded": "bike.ride_recorded"},
    "hospital": {g: f"hospital.encounter_{g}" for g in ("opened", "closed", "overdue",
                                                        "defaulted", "settled", "recorded")},
    "hotel": {"opened": "hotel.stay_checked_in", "closed": "hotel.stay_checked_out",
              "overdue": "hotel.stay_unsettled", "defaulted": "hotel.stay_defaulted",
              "settled": "hotel.stay_settled", "recorded": "hotel.stay_recorded"},
}


# The sim's words are the kit's: every type named above is one the kit's dispatcher types.
assert all(set(KIND_WORDS[k].values()) <= set(KIT_EVENTS[k]) for k in KIND_WORDS)

Expected = list[tuple[str, tuple[str, ...]]]  # (session id, the generic events it must send)


def told(kind: str, generic: str, arrived: list[str]) -> bool:
    return f"benefit_session.{generic}" in arrived or KIND_WORDS[kind][generic] in arrived


class Deviation(Exception):
    """A step did not go as the contract says."""


class Timeline:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.deviations = 0

    def say(self, kind: str, text: str, ok: bool = True) -> None:
        mark = "✓" if ok else "✗"
        print(f"[{time.monotonic() - self.started:6.1f}s] {mark} {kind:<8} {text}", flush=True)
        if not ok:
            self.deviations += 1


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Deviation(what)


# ---- plain JSON over HTTP (admin and citizen calls; partners use the kit) ----

@dataclass
class Api:
    url: str

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             ok: tuple[int, ...] = (200, 201)) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        answer = json.loads(raw) if raw else None
        if status not in ok:
            problem = answer if isinstance(answer, dict) else {}
            fields = ", ".join(e.get("field", "") for e in problem.get("errors") or [])
            raise Deviation(f"{method} {path} answered {status} {problem.get('code')}"
                            + (f" ({fields})" if fields else ""))
        return answer


def id_number() -> str:
    """A random valid ID number (GB 11643): region 110101, a birth date, the check digit."""
    from stdnum.cn import ric

    born = datetime(1970, 1, 1) + timedelta(days=secrets.randbelow(30 * 365))
    body = f"110101{born:%Y%m%d}{secrets.randbelow(1000):03d}"
    return body + ric.calc_check_digit(body + "0")


@dataclass
class Citizen:
    token: str
    id_number: str


@dataclass
class World:
    api: Api
    operator: str
    keys: dict[str, str] = field(default_factory=dict)  # kind -> partner API key
    provider: str = ""
    # Two citizens per run (registration is rate-limited per address): tier A, and one the
    # provider lifts to AA for the benefits that need 700.
    _citizens: dict[bool, Citizen] = field(default_factory=dict)

    @classmethod
    def start(cls, url: str, phone: str, password: str) -> World:
        api = Api(url)
        token = api.call("POST", "/v1/auth/login", {"phone": phone, "password": password})
        world = cls(api, token["access_token"])
        run = secrets.token_hex(3)
        for kind in KINDS:
            created = api.call("POST", "/v1/admin/partners",
                               {"name": f"模拟{kind} {run}", "kind": kind}, world.operator)
            world.keys[kind] = created["api_key"]["api_key"]
        created = api.call("POST", "/v1/admin/providers",
                           {"name": f"模拟数据源 {run}", "catalogue_codes": list(LIFT)},
                           world.operator)
        world.provider = created["api_key"]["api_key"]
        return world

    def citizen(self, *, lifted: bool = False) -> Citizen:
        if lifted not in self._citizens:
            self._citizens[lifted] = self._register(lifted)
        return self._citizens[lifted]

    def _register(self, lifted: bool) -> Citizen:
        number = id_number()
        if lifted:
            occurred = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
            result = self.api.call("POST", "/v1/provider/records:batch", {"records": [
                {"ref": f"sim-{secrets.token_hex(6)}", "id_number": number,
                 "catalogue_code": code, "occurred_at": occurred, "summary": "模拟记录"}
                for code in LIFT]}, self.provider)
            expect(all(r["status"] == "created" for r in result["results"]),
                   "the provider's records were not all created")
        phone = f"139{secrets.randbelow(10**8):08d}"
        password = f"sim-{secrets.token_hex(8)}-x9"  # letters and digits
        self.api.call("POST", "/v1/auth/register", {"phone": phone, "password": password,
                                                     "name": "模拟市民", "id_number": number})
        token = self.api.call("POST", "/v1/auth/login", {"phone": phone, "password": password})
        return Citizen(token["access_token"], number)

    def qr(self, citizen: Citizen) -> str:
        issued = self.api.call("POST", "/v1/me/credentials", {"count": 1}, citizen.token)
        return str(issued["items"][0]["qr_payload"])

    def rule(self, code: str) -> dict[str, Any]:
        rules = self.api.call("GET", "/v1/admin/benefit-rules", token=self.operator)
        items = rules["items"] if isinstance(rules, dict) else rules
        return next(r for r in items if r["code"] == code)

    def patch_rule(self, code: str, body: dict[str, Any]) -> None:
        self.api.call("PATCH", f"/v1/admin/benefit-rules/{code}", body, self.operator)


# ---- the webhook receiver, built from the kit ----

class Receiver:
    """One endpoint per kind (``/hooks/<kind>``), each verified by its kind's dispatcher."""

    def __init__(self) -> None:
        self.dispatchers: dict[str, EventDispatcher] = {}
        self.events: list[tuple[str, SessionEvent]] = []
        self.refused = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                kind = self.path.rstrip("/").rsplit("/", 1)[-1]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                dispatcher = receiver.dispatchers.get(kind)
                status = 404
                if dispatcher is not None:
                    try:
                        event = dispatcher.handle(dict(self.headers.items()), body)
                        status = 204
                        if event is not None:
                            with receiver._lock:
                                receiver.events.append((kind, event))
                    except WebhookError:
                        receiver.refused += 1
                        status = 400
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def types_for(self, session_id: str) -> list[str]:
        """The types received for a session, in feed order (deliveries may cross)."""
        with self._lock:
            mine = [e for _, e in self.events if e.session_id == session_id]
        return [e.type for e in sorted(mine, key=lambda e: e.seq or 0)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def offers_webhooks(api: Api) -> bool:
    spec = api.call("GET", "/openapi.json")
    return "/v1/partner/webhook-endpoints" in spec.get("paths", {})


def register_endpoints(world: World, receiver: Receiver) -> None:
    dispatcher_of: dict[str, Callable[[str], EventDispatcher]] = {
        "library": LibraryEvents, "bike": BikeEvents, "hospital": HospitalEvents,
        "hotel": HotelEvents}
    for kind, make in dispatcher_of.items():
        created = world.api.call("POST", "/v1/partner/webhook-endpoints",
                                 {"url": f"{receiver.url}/{kind}",
                                  "description": "partner simulator"}, world.keys[kind])
        receiver.dispatchers[kind] = make(created["secret"])


def wait_for(what: str, probe: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not probe():
        if time.monotonic() > deadline:
            raise Deviation(f"{what}: not seen within {seconds:.0f} s (is the worker running?)")
        time.sleep(1)


# ---- the plays ----

def soon(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


def play_library(world: World, say: Callable[[str], None], wait: float) -> Expected:
    client = LibraryClient(world.api.url, world.keys["library"])
    citizen = world.citizen()
    books = [Book("9787020002207", "红楼梦", 3000, 4500), Book("9787020008735", "三国演义",
                                                                 3000, 4200)]
    loan = client.lend(world.qr(citizen), books, due_at=soon(days=14))
    expect(loan.decision == "eligible" and loan.session_id is not None,
           f"a tier A citizen's loan opened no session ({loan.decision})")
    expect(loan.waived_fen == 6000 and loan.charge_normally_fen == 0,
           f"waived {loan.waived_fen}, expected both deposits (6000)")
    say(f"verify + lend 2 books: loan {loan.id[:8]}, session {loan.session_id[:8]}, "
        f"deposit ¥{loan.waived_fen / 100:.2f} waived")
    loan = client.return_books(loan.id, [books[0].barcode])
    expect(loan.status == "open" and loan.books_out == 1, "a partial return closed the loan")
    say("partial return: 1 book back, 1 still out, loan open")
    try:
        client.return_books(loan.id, ["9999999999999"])
        raise Deviation("a book never lent was taken back")
    except ApiError as error:
        expect(error.status == 422 and error.code == "book_not_lent", f"got {error}")
    say("a book never lent is refused (422 book_not_lent)")
    loan = client.return_books(loan.id, [books[1].barcode])
    expect(loan.state == "fulfilled" and loan.status == "closed", f"state {loan.state}")
    say("the last book back: loan closed, session fulfilled")
    first = loan.session_id

    late = client.lend(world.qr(citizen), [Book("9787544253994", "百年孤独", 2500, 3900)],
                       due_at=soon(seconds=3))
    assert late.session_id is not None
    say(f"a second loan due in 3 s: loan {late.id[:8]}")
    time.sleep(4)
    wait_for("the overdue sweep", lambda: client.get(late.id).state == "overdue", wait)
    say(f"past due, the worker's sweep: overdue ({client.get(late.id).overdue_days} day)")
    late = client.return_books(late.id, [late.books[0].barcode])
    expect(late.state == "fulfilled", f"a late return left state {late.state}")
    say(f"returned late: fulfilled, {late.overdue_days} overdue day reported, no record")
    assert late.session_id is not None
    return [(first, ("opened", "closed")), (late.session_id, ("opened", "overdue", "closed"))]


def play_bike(world: World, say: Callable[[str], None], wait: float) -> Expected:
    del wait
    client = BikeClient(world.api.url, world.keys["bike"])
    citizen = world.citizen()
    ride = client.unlock(world.qr(citizen), bike_id="BK-1024", deposit_fen=29900,
                         due_at=soon(hours=4))
    expect(ride.session_id is not None and ride.waived_fen == 29900,
           f"deposit waived {ride.waived_fen}, expected 29900")
    say(f"unlock BK-1024: ride {ride.id[:8]}, deposit ¥299.00 waived")
    ride = client.lock(ride.id, ended_at=datetime.now(UTC), fee_fen=150, paid_fen=0)
    expect(ride.state == "defaulted" and ride.amount_owed_fen == 150, f"state {ride.state}")
    say("lock with the ¥1.50 fee unpaid: defaulted, the citizen is notified, grace starts")
    ride = client.settle(ride.id)
    expect(ride.state == "settled", f"state {ride.state}")
    records = world.api.call("GET", "/v1/me/records", token=citizen.token)["items"]
    expect(not [r for r in records if r["catalogue_code"] == "bike.default"],
           "a default settled in grace left a record")
    say("the citizen paid during grace: settled, no record")
    assert ride.session_id is not None
    return [(ride.session_id, ("opened", "closed", "defaulted", "settled"))]


def play_hospital(world: World, say: Callable[[str], None], wait: float) -> Expected:
    del wait
    client = HospitalClient(world.api.url, world.keys["hospital"])
    citizen = world.citizen(lifted=True)
    visit = client.open(world.qr(citizen), department="内科", due_at=soon(days=30))
    expect(visit.session_id is not None and visit.credit_line_fen == 200000,
           f"credit line {visit.credit_line_fen} ({visit.decision}), expected 200000")
    say(f"encounter {visit.id[:8]}: credit line ¥{visit.credit_line_fen / 100:.2f}")
    visit = client.bill(visit.id, [BillItem("REG", "挂号", 2000), BillItem("CT", "CT检查",
                                                                           58000)])
    visit = client.bill(visit.id, [BillItem("OP", "手术", 180000)])
    last = visit.bills[-1]
    expect((last.deferred_fen, last.pay_now_fen) == (140000, 40000),
           f"bill split {last.deferred_fen}/{last.pay_now_fen}, expected 140000/40000")
    say("bills ¥600 then ¥1,800: ¥2,000 deferred on the line, ¥400 paid now as usual")
    visit = client.settle(visit.id, paid_fen=visit.outstanding_fen)
    expect(visit.state == "fulfilled", f"state {visit.state}")
    say("the deferred ¥2,000 paid: encounter closed, fulfilled")
    assert visit.session_id is not None
    return [(visit.session_id, ("opened", "closed"))]


def play_hotel(world: World, say: Callable[[str], None], wait: float) -> Expected:
    client = HotelClient(world.api.url, world.keys["hotel"])
    code = "hotel.deposit_free"
    grace = world.rule(code)["grace_days"]
    world.patch_rule(code, {"grace_days": 0})
    say(f"operator: {code} grace days {grace} → 0 (PATCH /v1/admin/benefit-rules)")
    try:
        citizen = world.citizen(lifted=True)
        stay = client.check_in(world.qr(citizen), room="1208", nights=1, deposit_fen=50000)
        expect(stay.session_id is not None and stay.waived_fen == 50000,
               f"deposit waived {stay.waived_fen} ({stay.decision}), expected 50000")
        say(f"check-in room 1208: stay {stay.id[:8]}, deposit ¥500.00 waived")
        stay = client.checkout(stay.id, charges_fen=12000, paid_fen=0)
        expect(stay.state == "defaulted", f"state {stay.state}")
        say("checkout with ¥120.00 of charges unpaid: defaulted, grace 0 days")
    finally:
        world.patch_rule(code, {"grace_days": grace})
        say(f"operator: {code} grace days back to {grace}")
    wait_for("the default record", lambda: client.get(stay.id).state == "recorded", wait)
    say("grace over, the worker's sweep: a minor default record is written")
    records = world.api.call("GET", "/v1/me/records", token=citizen.token)["items"]
    mine = [r for r in records if r["catalogue_code"] == "hotel.default"]
    expect(len(mine) == 1, f"the citizen sees {len(mine)} hotel.default records")
    say(f"the citizen sees it and why: {mine[0]['summary'][:60]}…")
    sessions = world.api.call("GET", "/v1/me/benefit-sessions", token=citizen.token)["items"]
    expect(any(s["state"] == "recorded" for s in sessions), "no recorded session in /me")
    assert stay.session_id is not None
    return [(stay.session_id, ("opened", "closed", "defaulted", "recorded"))]


def play_scenic(world: World, say: Callable[[str], None], wait: float) -> Expected:
    del wait
    client = ScenicClient(world.api.url, world.keys["scenic"])
    citizen = world.citizen(lifted=True)
    qr = world.qr(citizen)
    entry = client.admit(qr, ticket_fen=8000)
    expect(entry.session_id is None and entry.waived_fen == 1600,
           f"discount {entry.waived_fen} ({entry.decision}), expected 1600")
    charge = entry.charge_normally_fen / 100
    say(f"entry {entry.id[:8]}: ¥80.00 ticket, 20 % off, charge ¥{charge:.2f}")
    try:
        client.admit(qr, ticket_fen=8000)
        raise Deviation("the same credential was admitted twice")
    except ApiError as error:
        expect(error.code == "credential_used", f"got {error}")
    say("the same credential again: refused (single use)")
    return []


PLAYS: dict[str, Callable[[World, Callable[[str], None], float], Expected]] = {
    "library": play_library, "bike": play_bike, "hospital": play_hospital,
    "hotel": play_hotel, "scenic": play_scenic}


def check_webhooks(receiver: Receiver, sessions: dict[str, Expected], timeline: Timeline,
                   wait: float) -> None:
    """Each session's events arrived, signed, in its kind's words (or the generic ones)."""
    for kind, expected in sessions.items():
        for sid, generics in expected:
            def arrived(sid: str = sid, kind: str = kind,
                        generics: tuple[str, ...] = generics) -> bool:
                got = receiver.types_for(sid)
                return all(told(kind, g, got) for g in generics)

            try:
                wait_for(f"{kind} webhooks of session {sid[:8]} ({', '.join(generics)})",
                         arrived, wait)
                timeline.say(kind, f"webhooks for {sid[:8]} (by seq): "
                             + ", ".join(receiver.types_for(sid)))
            except Deviation as error:
                timeline.say(kind, f"{error}; got {receiver.types_for(sid)}", ok=False)
    if receiver.refused:
        timeline.say("webhook", f"{receiver.refused} deliveries failed verification", ok=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("XINYI_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--wait", type=float, default=90,
                        help="seconds to wait for the worker's sweeps and webhooks")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    parser.add_argument("--no-webhooks", action="store_true",
                        help="do not check webhook arrival even if the server offers it")
    args = parser.parse_args(argv)
    phone = os.environ.get("XINYI_SIM_OPERATOR_PHONE", DEMO_OPERATOR[0])
    password = os.environ.get("XINYI_SIM_OPERATOR_PASSWORD", DEMO_OPERATOR[1])
    timeline = Timeline()
    try:
        world = World.start(args.url.rstrip("/"), phone, password)
    except (Deviation, OSError) as error:
        print(f"cannot start: {error} (is the server running, with an operator login?)",
              file=sys.stderr)
        return 2
    timeline.say("setup", f"partners of {len(KINDS)} kinds and a data provider created")
    receiver = None
    if not args.no_webhooks and offers_webhooks(world.api):
        receiver = Receiver()
        register_endpoints(world, receiver)
        timeline.say("setup", f"webhook receiver on {receiver.url}, endpoints registered")
    else:
        timeline.say("setup", "webhooks not checked (no /v1/partner/webhook-endpoints)")
    sessions: dict[str, Expected] = {}
    for kind in [k for k in args.kinds.split(",") if k]:
        try:
            sessions[kind] = PLAYS[kind](world, lambda text, kind=kind: timeline.say(kind, text),
                                         args.wait)
        except (Deviation, ApiError) as error:
            timeline.say(kind, f"deviation: {error}", ok=False)
    if receiver is not None:
        check_webhooks(receiver, sessions, timeline, args.wait)
        receiver.stop()
    verdict = "no deviation" if not timeline.deviations else f"{timeline.deviations} deviation(s)"
    print(f"done: {verdict}", flush=True)
    return 1 if timeline.deviations else 0


if __name__ == "__main__":
    sys.exit(main())
