"""``xinyi import-records``: the same records as the batch API, streamed, restartable, no PII out.

Integration tests run on both backends (PostgreSQL uses COPY, SQLite executemany); the
importer's units of work open their sessions on the test's connection, so everything is rolled
back afterwards.
The equivalence tests at the end hold the importer's faster per-row steps to the originals.
"""

from __future__ import annotations

import csv
import json
import random
import re
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from stdnum.cn import ric

from tests.factories import (
    SENSITIVE_VALUES,
    api_client_headers,
    bearer,
    count,
    login,
    register_citizen,
    staff_headers,
    valid_id_number,
)
from xinyi.deps import Deps
from xinyi.errors import NotFound
from xinyi.outbox.models import OutboxEvent
from xinyi.pii import IdNumber, InvalidIdentifier
from xinyi.records.importing import (
    CachedIdParser,
    FastItemLoader,
    ImportFileError,
    ImportSummary,
    content_hash,
    encoding,
    fastpath,
    import_records,
    pipeline,
    source,
    writers,
)
from xinyi.records.importing.staging import StagedWriter
from xinyi.records.importing.writers import DirectWriter
from xinyi.records.models import CreditRecord, ListEntry
from xinyi.records.service import _content_hash, load_item
from xinyi.scoring.models import CreditScore
from xinyi.scoring.service import recompute_all, recompute_subjects
from xinyi.subjects.models import Subject
from xinyi.subjects.service import subject_bidx
from xinyi.timeutil import china_today

COLUMNS = ["ref", "id_number", "catalogue_code", "occurred_at", "summary", "occupation"]
SNAPSHOT = ("catalogue_code", "occurred_on", "summary", "occupation", "points",
            "display_months", "repair_after_months", "display_until", "repair_from", "status",
            "archived_reason", "content_hash", "subject_bidx")


def days_ago(n: int) -> str:
    return (date.today() - timedelta(days=n)).isoformat()


def row(ref: str, id_number: str, code: str = "traffic.violation_minor", occurred: int = 10,
        summary: str = "测试记录", occupation: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"ref": ref, "id_number": id_number, "catalogue_code": code,
                           "occurred_at": days_ago(occurred), "summary": summary}
    if occupation is not None:
        out["occupation"] = occupation
    return out


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, COLUMNS)
        out.writeheader()
        for r in rows:
            out.writerow({c: r.get(c, "") for c in COLUMNS})
    return path


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)
                              for x in lines) + "\n", encoding="utf-8")
    return path


def new_provider(app: Flask, client: FlaskClient) -> tuple[dict[str, str], uuid.UUID]:
    operator = staff_headers(app, client, "operator")
    headers, created = api_client_headers(client, operator, "providers")
    return headers, uuid.UUID(created["id"])


def run_import(app: Flask, provider_id: uuid.UUID, path: Path, **options: Any) -> ImportSummary:
    deps: Deps = app.extensions["xinyi"]
    return import_records(deps.db.sessions, deps, provider_id, path, **options)


def records(app: Flask, provider_id: uuid.UUID) -> dict[str, CreditRecord]:
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        return {r.provider_ref: r for r in s.scalars(
            select(CreditRecord).where(CreditRecord.provider_id == provider_id))}


def read_rejects(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def assert_no_personal_data(text: str, id_numbers: list[str]) -> None:
    for value in id_numbers:
        assert value not in text
    assert not re.search(r"\d{6}(?:19|20)\d{2}[01]\d[0-3]\d\d{3}[\dXx]", text)
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", text)


# ---- what gets written ---------------------------------------------------------------------

def test_csv_import_writes_what_the_batch_api_writes(app: Flask, client: FlaskClient,
                                                     tmp_path: Path) -> None:
    api_headers, _ = new_provider(app, client)
    _, provider_id = new_provider(app, client)
    ids = [valid_id_number(5100 + n, region=region)
           for n, region in enumerate(("110102", "310104", "120101"))]
    rows = [
        row("a-1", ids[0], "traffic.violation_minor", occupation="teacher"),
        row("a-2", ids[0], "court.dishonest_debtor", occurred=40),  # black list
        row("a-3", ids[1], "volunteer.model", summary='引号"与,逗号\\反斜杠\t制表'),  # red list
        row("a-4", ids[1], "blood.donation", occurred=500),  # past display: archived
        row("a-5", ids[2], "commitment.broken", occurred=60),
    ]
    summary = run_import(app, provider_id, write_csv(tmp_path / "r.csv", rows))
    assert (summary.read, summary.created, summary.unchanged, summary.rejected) == (5, 5, 0, 0)

    resp = client.post("/v1/provider/records:batch", json={"records": rows},
                       headers=api_headers)
    assert [r["status"] for r in resp.get_json()["results"]] == ["created"] * 5
    deps = app.extensions["xinyi"]
    with deps.db.session() as s:
        by_provider: dict[uuid.UUID, dict[str, CreditRecord]] = {}
        for r in s.scalars(select(CreditRecord)):
            by_provider.setdefault(r.provider_id, {})[r.provider_ref] = r
    imported = by_provider.pop(provider_id)
    (via_api,) = by_provider.values()
    for ref, record in imported.items():
        assert {k: getattr(record, k) for k in SNAPSHOT} == {
            k: getattr(via_api[ref], k) for k in SNAPSHOT}, ref
    assert imported["a-4"].status == "archived" and imported["a-4"].archived_at is not None
    assert imported["a-3"].summary == rows[2]["summary"]
    assert imported["a-1"].occupation == "teacher" and imported["a-2"].occupation is None

    with deps.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Subject)) == 3
        stored = {deps.cipher.decrypt(e, context="subjects.id_number"): district
                  for e, district in s.execute(select(Subject.id_number_enc, Subject.district))}
        # Each person's district (the statistics' coverage) from the ID number in hand.
        assert stored == {idn: idn[:6] for idn in ids}
        entries = list(s.scalars(select(ListEntry).where(
            ListEntry.record_id.in_([imported["a-2"].id, imported["a-3"].id]))))
        assert sorted(e.list for e in entries) == ["black", "red"]
        assert all(e.legal_basis and e.left_at is None for e in entries)
        events = [e.payload for e in s.scalars(select(OutboxEvent).where(
            OutboxEvent.topic == "list.entered"))]
        assert {"list": "black", "record_id": str(imported["a-2"].id),
                "catalogue_code": "court.dishonest_debtor"} in events
        assert len(events) == 4  # two from the import, two from the API


def test_scores_of_touched_subjects_are_recomputed(app: Flask, client: FlaskClient,
                                                  tmp_path: Path) -> None:
    _, provider_id = new_provider(app, client)
    idn, other = valid_id_number(5201), valid_id_number(5202)
    run_import(app, provider_id, write_csv(tmp_path / "r.csv", [
        row("s-1", idn, "court.dishonest_debtor"), row("s-2", idn, "blood.donation"),
        row("s-3", other, "traffic.safe_driver"), row("s-4", other, "bike.default", 400)]),
        batch_size=1)  # people recur across chunks
    deps = app.extensions["xinyi"]
    bidx = subject_bidx(deps, IdNumber.parse(idn))
    with deps.db.session() as s:
        scores = dict(s.execute(select(CreditScore.subject_bidx, CreditScore.score)).all())
        assert scores[bidx] == 600 - 200 + 10
        now = deps.clock()
        assert recompute_subjects(s, [bidx, b"\0" * 32], now=now, today=china_today(now)) == 1
        recompute_all(s, now=now, today=china_today(now))
        assert dict(s.execute(select(CreditScore.subject_bidx, CreditScore.score)).all()) \
            == scores
    citizen = register_citizen(client, id_number=idn)
    me = bearer(login(client, citizen["phone"])["access_token"])
    assert client.get("/v1/me/credit", headers=me).get_json()["score"] == scores[bidx]


def test_black_list_entry_shows_in_the_admin_list(app: Flask, client: FlaskClient,
                                                 tmp_path: Path) -> None:
    _, provider_id = new_provider(app, client)
    idn = valid_id_number(5301)
    run_import(app, provider_id, write_jsonl(tmp_path / "r.jsonl", [
        row("b-1", idn, "telecom.fraud"), row("b-2", idn, "traffic.violation_minor")]))
    auditor = staff_headers(app, client, "auditor")
    lists = client.get("/v1/admin/lists?list=black", headers=auditor).get_json()
    assert lists["meta"]["total"] == 1
    entry = lists["items"][0]
    assert entry["record_id"] == str(records(app, provider_id)["b-1"].id)
    assert entry["subject"] == idn[:3] + "*" * 11 + idn[-4:]
    assert count(app, OutboxEvent) == 1


def test_the_gil_switch_interval_is_short_during_an_import_and_restored_after(
        app: Flask, client: FlaskClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The writing thread must get the GIL back quickly after each database answer (the
    reader thread holds it otherwise): 1 ms instead of 5 during the import, and only then."""
    _, provider_id = new_provider(app, client)
    during: list[float] = []

    def recording(write: Any) -> Any:
        def recorded(self: Any, session: Any, chunk: Any) -> Any:
            during.append(sys.getswitchinterval())
            return write(self, session, chunk)
        return recorded

    for writer in (StagedWriter, DirectWriter):  # whichever the backend writes with
        monkeypatch.setattr(writer, "write", recording(writer.write))
    before = sys.getswitchinterval()
    assert before > pipeline.SWITCH_INTERVAL
    summary = run_import(app, provider_id, write_csv(tmp_path / "a.csv", [
        row("si-1", valid_id_number(5811)), row("si-2", valid_id_number(5812))]), batch_size=1)
    assert summary.created == 2
    assert during == [pipeline.SWITCH_INTERVAL] * 2
    assert sys.getswitchinterval() == before


def test_only_subjects_not_yet_present_are_encrypted(app: Flask, client: FlaskClient,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _, provider_id = new_provider(app, client)
    known, new = valid_id_number(5801), valid_id_number(5802)
    run_import(app, provider_id, write_csv(tmp_path / "a.csv", [row("e-1", known)]))
    deps = app.extensions["xinyi"]
    encrypt, contexts = deps.cipher.encrypt, []

    def counting(value: str, *, context: str) -> bytes:
        contexts.append(context)
        return bytes(encrypt(value, context=context))

    monkeypatch.setattr(deps.cipher, "encrypt", counting)
    summary = run_import(app, provider_id, write_csv(tmp_path / "b.csv", [
        row("e-2", known), row("e-3", new), row("e-4", new), row("e-5", known),
        row("e-6", new)]), batch_size=2)
    assert summary.created == 5
    assert contexts == ["subjects.id_number"]  # the new person, once, across three chunks
    with deps.db.session() as s:
        assert {deps.cipher.decrypt(e, context="subjects.id_number")
                for e in s.scalars(select(Subject.id_number_enc))} == {known, new}


# ---- bad rows, rejects, restarts -----------------------------------------------------------

def test_bad_rows_are_rejected_with_line_and_reason_and_no_personal_data(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    _, provider_id = new_provider(app, client)
    idn = valid_id_number(5401)
    bad_check = idn[:-1] + ("0" if idn[-1] != "0" else "1")
    SENSITIVE_VALUES.add(bad_check)
    future = (date.today() + timedelta(days=3)).isoformat()
    lines: list[Any] = [
        row("ok-1", idn),                                          # 1
        row("bad-id", bad_check),                                  # 2
        row("bad-code", idn, "no.such_item"),                      # 3
        {**row("bad-future", idn), "occurred_at": future},         # 4
        {**row("bad-old", idn), "occurred_at": "1949-09-30"},      # 5
        row("bad ref with spaces", idn),                           # 6
        row("bad-long", idn, summary="长" * 501),                  # 7
        row("bad-occupation", idn, occupation="astronaut"),        # 8
        "{not json",                                               # 9
        '"a string"',                                              # 10
        {"ref": "bad-missing", "id_number": idn},                  # 11
        {**row("bad-extra", idn), "role": "admin"},                # 12
        row("bad-nul", idn, summary="a\x00b"),                     # 13
        row(idn, idn),                                             # 14: the ID number as ref
        {**row("bad-type", idn), "summary": 5},                    # 15
        "",                                                        # 16: blank, skipped
        row("ok-2", idn, "blood.donation"),                        # 17
    ]
    rejects = tmp_path / "rejects.csv"
    summary = run_import(app, provider_id, write_jsonl(tmp_path / "r.jsonl", lines),
                         reject_path=rejects)
    assert (summary.read, summary.created, summary.rejected) == (16, 3, 13)
    assert set(records(app, provider_id)) == {"ok-1", "ok-2", idn}
    got = {int(r["line"]): r for r in read_rejects(rejects)}
    assert sorted(got) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]
    assert got[2]["ref"] == "bad-id" and got[2]["reason"].startswith("validation_error: id_number")
    assert got[3]["reason"].startswith("unknown_catalogue_code: catalogue_code")
    assert "occurred_at" in got[4]["reason"] and "occurred_at" in got[5]["reason"]
    assert got[6]["ref"] == "" and "ref" in got[6]["reason"]
    assert "summary" in got[7]["reason"] and "occupation" in got[8]["reason"]
    assert "not valid JSON" in got[9]["reason"] and "object" in got[10]["reason"]
    assert "catalogue_code" in got[11]["reason"] and "summary" in got[11]["reason"]
    assert "role: Unknown field" in got[12]["reason"] and "summary" in got[13]["reason"]
    assert "summary" in got[15]["reason"]
    assert summary.reasons == {"validation_error": 12, "unknown_catalogue_code": 1}
    assert_no_personal_data(rejects.read_text(encoding="utf-8"), [idn, bad_check])


def test_a_ref_that_holds_an_id_number_stays_out_of_the_reject_file(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    _, provider_id = new_provider(app, client)
    idn = valid_id_number(5671)
    rejects = tmp_path / "rejects.csv"
    run_import(app, provider_id, write_jsonl(tmp_path / "r.jsonl", [
        row(f"JT{idn}", idn, "no.such_item"), row(f"{idn}a", idn, "no.such_item"),
        row(f"JT{idn}-1", idn, "no.such_item")]), reject_path=rejects)
    assert [r["ref"] for r in read_rejects(rejects)] == ["", "", ""]
    assert_no_personal_data(rejects.read_text(encoding="utf-8"), [idn])


def test_rerun_creates_nothing_and_a_changed_ref_is_rejected(app: Flask, client: FlaskClient,
                                                            tmp_path: Path) -> None:
    _, provider_id = new_provider(app, client)
    ids = [valid_id_number(5500 + n) for n in range(4)]
    rows = [row(f"r-{n}", ids[n % 4], code) for n, code in enumerate(
        ["traffic.violation_minor", "court.dishonest_debtor", "blood.donation",
         "volunteer.model", "bike.default", "utility.unpaid_bill", "charity.donation"])]
    path = write_csv(tmp_path / "r.csv", rows)
    first = run_import(app, provider_id, path, batch_size=3)
    assert (first.created, first.unchanged, first.rejected) == (7, 0, 0)
    before = (count(app, CreditRecord), count(app, ListEntry), count(app, OutboxEvent),
              count(app, Subject))

    again = run_import(app, provider_id, path, batch_size=3)
    assert (again.read, again.created, again.unchanged, again.rejected) == (7, 0, 7, 0)
    assert (count(app, CreditRecord), count(app, ListEntry), count(app, OutboxEvent),
            count(app, Subject)) == before

    # A chunk mixing new rows, an unchanged one and a ref reused with other content (both
    # black-list items: neither may list anyone again); plus the same ref twice inside the
    # file (the first one wins).
    rejects = tmp_path / "rejects.csv"
    changed = run_import(app, provider_id, write_csv(tmp_path / "r2.csv", [
        rows[1],                                           # unchanged black-list record
        row("r-0", ids[0], "telecom.fraud"),               # reuses r-0 with other content
        row("n-1", ids[0], "telecom.fraud"),
        row("n-1", ids[0], "telecom.fraud"),               # same again: unchanged
        row("n-1", ids[0], "blood.donation"),              # same ref, other content
        row("n-2", ids[3], "volunteer.model"),
    ]), reject_path=rejects, batch_size=4)
    assert (changed.created, changed.unchanged, changed.rejected) == (2, 2, 2)
    assert changed.reasons == {"duplicate_reference": 2}
    kept = records(app, provider_id)
    assert kept["r-0"].catalogue_code == "traffic.violation_minor"
    assert kept["n-1"].catalogue_code == "telecom.fraud"
    assert {(int(r["line"]), r["ref"], r["reason"].split(":")[0])
            for r in read_rejects(rejects)} == {(3, "r-0", "duplicate_reference"),
                                                (6, "n-1", "duplicate_reference")}
    assert count(app, ListEntry) == before[1] + 2  # n-1 (black) and n-2 (red), nothing else
    listed = OutboxEvent.topic.like("list.%")
    assert count(app, OutboxEvent, listed) == count(app, ListEntry)
    # n-1 lowers the tier of ids[0] (its own event), n-2 raises that of ids[3] or not.
    assert count(app, OutboxEvent, ~listed) - (before[2] - before[1]) in (1, 2)

    # After a chunk of known rows the importer looks refs up before inserting; a later chunk
    # mixing a known black-list record with a new one must still list only the new one.
    mixed = run_import(app, provider_id, write_csv(tmp_path / "r3.csv", [
        rows[0], rows[2], rows[1], row("n-3", ids[2], "exam.cheating")]), batch_size=2)
    assert (mixed.created, mixed.unchanged, mixed.rejected) == (1, 3, 0)
    assert count(app, ListEntry) == before[1] + 3


@pytest.mark.parametrize("batch_size", [1, 10])
def test_a_ref_repeated_in_the_file_is_judged_against_the_record_that_holds_it(
        app: Flask, client: FlaskClient, tmp_path: Path, batch_size: int) -> None:
    """A later row with a ref fares as the API (and a chunk of its own) would have it: against
    the stored record, not against an earlier row of the same chunk, wherever chunks end."""
    _, provider_id = new_provider(app, client)
    idn = valid_id_number(5631)
    stored = row("p-1", idn)
    run_import(app, provider_id, write_csv(tmp_path / "a.csv", [stored]))
    other = row("p-1", idn, "blood.donation")
    rejects = tmp_path / "rejects.csv"
    summary = run_import(app, provider_id, write_csv(tmp_path / "b.csv", [
        other,                                     # 2: other content than stored
        other,                                     # 3: the same again: still not stored
        stored,                                    # 4: what is stored
        row("p-2", idn), row("p-2", idn),          # 5, 6: new, then the same again
    ]), reject_path=rejects, batch_size=batch_size)
    assert (summary.created, summary.unchanged, summary.rejected) == (1, 2, 2)
    assert [(r["line"], r["ref"], r["reason"].split(":")[0]) for r in read_rejects(rejects)] \
        == [("2", "p-1", "duplicate_reference"), ("3", "p-1", "duplicate_reference")]
    assert records(app, provider_id)["p-1"].catalogue_code == "traffic.violation_minor"


def test_a_refused_row_stores_no_one_the_api_would_not_store(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    """The API checks the ref before it creates the subject: a person whose only row is a
    ``duplicate_reference`` gets no subject row (encrypted ID number) and no score."""
    _, provider_id = new_provider(app, client)
    run_import(app, provider_id, write_csv(tmp_path / "a.csv", [row("m-1", valid_id_number(5661))]))
    before = (count(app, Subject), count(app, CreditScore))
    summary = run_import(app, provider_id, write_csv(tmp_path / "b.csv", [
        row("m-1", valid_id_number(5662))]))  # the ref again, for someone else
    assert summary.reasons == {"duplicate_reference": 1}
    assert (count(app, Subject), count(app, CreditScore)) == before


@pytest.mark.parametrize("batch_size", [1, 10])
def test_someone_whose_first_row_is_refused_is_stored_with_their_first_new_record(
        app: Flask, client: FlaskClient, tmp_path: Path, batch_size: int) -> None:
    """Not storing the person of a refused row must not lose them when a later row of theirs
    is new, in the same chunk or a later one (whose rows assume nothing of earlier chunks)."""
    _, provider_id = new_provider(app, client)
    run_import(app, provider_id, write_csv(tmp_path / "a.csv", [row("q-1", valid_id_number(5671))]))
    before = count(app, Subject)
    idn = valid_id_number(5672)
    summary = run_import(app, provider_id, write_csv(tmp_path / "b.csv", [
        row("q-1", idn),                    # someone else's ref: refused, stores no one
        row("q-2", idn), row("q-3", idn),   # then new records of theirs
    ]), batch_size=batch_size)
    assert (summary.created, summary.reasons) == (2, {"duplicate_reference": 1})
    assert count(app, Subject) == before + 1
    deps = app.extensions["xinyi"]
    mine = records(app, provider_id)
    assert mine["q-2"].subject_bidx == mine["q-3"].subject_bidx
    with deps.db.session() as s:
        enc = s.scalar(select(Subject.id_number_enc).where(
            Subject.bidx == mine["q-2"].subject_bidx))
        assert deps.cipher.decrypt(enc, context="subjects.id_number") == idn
        assert s.get(CreditScore, mine["q-2"].subject_bidx) is not None


def test_file_problems_are_refused_before_anything_is_written(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    _, provider_id = new_provider(app, client)
    bad_header = tmp_path / "h.csv"
    bad_header.write_text("ref,id_number,catalogue_code,occurred_at,summary,role\n",
                          encoding="utf-8")
    with pytest.raises(ImportFileError, match="unknown: role"):
        run_import(app, provider_id, bad_header)
    not_utf8 = tmp_path / "gbk.csv"
    not_utf8.write_bytes(("ref,id_number,catalogue_code,occurred_at,summary\n"
                          "r,1,traffic.violation_minor,2020-01-01,测试\n").encode("gbk"))
    with pytest.raises(ImportFileError, match="not UTF-8"):
        run_import(app, provider_id, not_utf8)
    with pytest.raises(NotFound):
        run_import(app, uuid.uuid4(), write_csv(tmp_path / "ok.csv", []))
    assert count(app, CreditRecord) == 0


def test_a_csv_field_too_long_to_read_is_a_clear_error(app: Flask, client: FlaskClient,
                                                     tmp_path: Path) -> None:
    """Python's csv module refuses a field over 128 KiB (here a quoted one over many short
    lines): a file error naming where, not a traceback (the CLI reports domain errors only)."""
    _, provider_id = new_provider(app, client)
    idn = valid_id_number(5641)
    path = write_csv(tmp_path / "r.csv", [row("t-1", idn),
                                          row("t-2", idn, summary=("长" * 999 + "\n") * 200)])
    with pytest.raises(ImportFileError, match="after line 2") as caught:
        run_import(app, provider_id, path, batch_size=1)
    assert_no_personal_data(str(caught.value), [idn])
    assert set(records(app, provider_id)) == {"t-1"}  # what came before is kept: restartable


def test_an_overlong_line_is_never_held_whole(app: Flask, client: FlaskClient,
                                              tmp_path: Path) -> None:
    """Memory stays flat whatever the file holds: JSON Lines rejects the line and goes on; a
    CSV line that long (many short cells, each under the csv module's own limit) stops the
    import with a clear error, keeping what came before."""
    _, provider_id = new_provider(app, client)
    idn = valid_id_number(5681)
    long = source.MAX_LINE_CHARS + 10
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join([json.dumps(row("l-1", idn)), "[" + "1," * (long // 2) + "1]",
                               json.dumps(row("l-2", idn))]) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    summary = run_import(app, provider_id, path, reject_path=rejects)
    assert (summary.created, summary.rejected) == (2, 1)
    assert [(r["line"], r["reason"]) for r in read_rejects(rejects)] == [(
        "2", f"validation_error: the line is longer than {source.MAX_LINE_CHARS:,} characters")]
    csv_path = write_csv(tmp_path / "r.csv", [row("c-1", idn)])
    with csv_path.open("a", encoding="utf-8") as fh:
        fh.write("a," * (long // 2) + "a\n")
    with pytest.raises(ImportFileError, match="line 3 is longer than") as caught:
        run_import(app, provider_id, csv_path, batch_size=1)
    assert_no_personal_data(str(caught.value), [idn])
    assert "c-1" in records(app, provider_id)


def test_a_csv_line_of_exactly_the_limit_ending_in_crlf_is_one_line(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    """A CSV line of exactly MAX_LINE_CHARS characters before its CRLF is read whole, and the
    rows after it keep their line numbers (the CRLF is not split into a second, blank line)."""
    _, provider_id = new_provider(app, client)
    idn = valid_id_number(5691)
    path = write_csv(tmp_path / "r.csv", [row("e-1", idn), row("e-2", idn, summary="x"),
                                          row("e-3", idn, "no.such_item")])
    text = path.read_bytes().decode()
    line = next(x for x in text.split("\r\n") if x.startswith("e-2,"))
    padded = line[:-len(",x,")] + "," + "x" * (source.MAX_LINE_CHARS - len(line) + 1) + ","
    assert len(padded) == source.MAX_LINE_CHARS
    path.write_text(text.replace(line + "\r\n", padded + "\r\n"), encoding="utf-8", newline="")
    rejects = tmp_path / "rejects.csv"
    summary = run_import(app, provider_id, path, reject_path=rejects)
    assert (summary.read, summary.created, summary.rejected) == (3, 1, 2)
    assert [(r["line"], r["ref"]) for r in read_rejects(rejects)] == [("3", "e-2"), ("4", "e-3")]


def test_a_reject_file_that_is_the_import_file_is_refused(app: Flask, client: FlaskClient,
                                                         tmp_path: Path) -> None:
    """Opening the reject file for writing would empty the file being imported."""
    _, provider_id = new_provider(app, client)
    path = write_csv(tmp_path / "r.csv", [row("f-1", valid_id_number(5651))])
    before = path.read_bytes()
    with pytest.raises(ImportFileError, match="reject file"):
        run_import(app, provider_id, path, reject_path=tmp_path / "." / "r.csv")
    assert path.read_bytes() == before
    assert records(app, provider_id) == {}


def test_cli_imports_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic import command
    from sqlalchemy import create_engine, text

    from xinyi.cli import alembic_config, main

    url = f"sqlite:///{tmp_path}/cli.db"
    command.upgrade(alembic_config(url), "head")
    provider = uuid.uuid4()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_clients (id, type, name, created_at) "
                          "VALUES (:id, 'provider', 'p', '2026-01-01 00:00:00')"),
                     {"id": provider.hex})
        conn.execute(text("INSERT INTO provider_catalogue_grants (client_id, catalogue_code, "
                          "granted_at) VALUES (:id, '*', '2026-01-01 00:00:00')"),
                     {"id": provider.hex})
    engine.dispose()
    for name, value in (("XINYI_DATABASE_URL", url), ("XINYI_INSTANCE_PATH", str(tmp_path)),
                        ("XINYI_ENV", "development")):
        monkeypatch.setenv(name, value)
    idn = valid_id_number(5601)
    path = write_csv(tmp_path / "r.csv", [row("c-1", idn), row("c-2", "123")])
    result = CliRunner().invoke(main, [
        "import-records", str(path), "--provider", str(provider), "--reject-file",
        str(tmp_path / "rej.csv")])
    assert result.exit_code == 0, result.output
    assert "read 2, created 1, unchanged 0, rejected 1 (validation_error 1)" in result.output
    assert "rows/s" in result.output and idn not in result.output
    again = CliRunner().invoke(main, ["import-records", str(path), "--provider", str(provider)])
    assert "created 0, unchanged 1, rejected 1" in again.output


# ---- the faster per-row steps are equivalent to the originals ------------------------------

def _regions() -> list[str]:
    """Every 6-digit region code python-stdnum knows, some valid only in some years."""
    codes, province = [], ""
    for line in (Path(ric.__file__).parent / "loc.dat").read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^(\d\d) ", line):
            province = m.group(1)
        elif m := re.match(r"^  (\d{4}) ", line):
            codes.append(province + m.group(1))
    return codes


def _id_samples(rng: random.Random) -> Iterator[Any]:
    regions = [*_regions(), "999999", "000000", "110199"]
    for _ in range(3000):
        region = rng.choice(regions)
        year = rng.choice([1899, 1900, 1949, 1982, 1997, 1999, 2010, 2011, 2024,
                           date.today().year, date.today().year + 1, rng.randrange(1900, 2030)])
        body = f"{region}{year}{rng.randrange(1, 14):02d}{rng.randrange(1, 32):02d}" \
               f"{rng.randrange(1000):03d}"
        good = body + ric.calc_check_digit(body + "0")
        yield good
        yield body + rng.choice("0123456789X")
        yield good.lower()
    today = date.today()
    born = f"{today:%Y%m%d}"
    tomorrow = f"{today + timedelta(days=1):%Y%m%d}"
    for body in (f"110101{born}123", f"110101{tomorrow}123", "11010118991231123"):
        yield body + ric.calc_check_digit(body + "0")
    valid = valid_id_number(5701)
    yield from (f" {valid} ", valid[:-1], valid + "1", valid.replace("1", "１", 1),
                valid[:6] + "-" + valid[6:], "x" * 40, "", 110101, None, valid[:17] + "x")


def _parse(parser: Any, raw: Any) -> str:
    try:
        return "ok " + parser(raw).value
    except InvalidIdentifier as exc:
        return "error " + str(exc)


def test_cached_id_parser_accepts_exactly_what_id_number_parse_accepts() -> None:
    today = date.today()
    cached = CachedIdParser(max_entries=500)  # small: the cache also gets cleared
    outcomes = set()
    for raw in _id_samples(random.Random(11)):
        expected = _parse(lambda r: IdNumber.parse(r, today=today), raw)
        for _ in range(2):  # the second call answers from the cache
            assert _parse(lambda r: cached(r, today), raw) == expected, raw
        outcomes.add(expected.split(" ")[0] + " " + expected.split(" ", 1)[1][:20]
                     if expected.startswith("error") else "ok")
    assert "ok" in outcomes and len(outcomes) >= 5  # accepted, and several kinds of refusal


_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["r-1", "traffic.violation_minor", "2024-02-29", "2024-02-30",
                     "2024-01-05T10:00:00+08:00", "teacher", "astronaut", "", "a\x00",
                     "\ud800", "x" * 129, "记录", "2024-1-5", "110101199001011234"]))
_value = st.one_of(_text, st.none(), st.integers(), st.booleans(), st.lists(_text, max_size=2))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from([*COLUMNS, "role"]), _value, max_size=7),
       st.fixed_dictionaries({}, optional={c: _value for c in COLUMNS}))
def test_fast_item_loader_returns_what_load_item_returns(raw: dict[str, Any],
                                                         extra: dict[str, Any]) -> None:
    loader = FastItemLoader()
    assert loader.plan is not None, "RecordItemIn changed: review FastItemLoader"
    for candidate in (raw, {**row("ok", "110101199001011234"), **extra}):
        fast = loader.fast(candidate)
        if fast is not None:
            assert fast == load_item(candidate)


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.one_of(st.none(), st.text()), st.dates(),
       st.binary(min_size=32, max_size=32))
def test_fast_content_hash_is_the_api_hash(code: str, summary: str, occupation: str | None,
                                          on: date, bidx: bytes) -> None:
    item = {"catalogue_code": code, "summary": summary, "occupation": occupation,
            "occurred_at": on}
    try:
        expected = _content_hash(bidx, item)
    except UnicodeEncodeError:  # lone surrogates: the schema refuses them before this
        with pytest.raises(UnicodeEncodeError):
            content_hash(bidx, item)
        return
    assert content_hash(bidx, item) == expected
    if occupation is None:
        del item["occupation"]
        assert content_hash(bidx, item) == expected


def test_copy_text_escapes_what_postgres_copy_would_misread() -> None:
    assert encoding.copy_text("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"
    assert encoding.copy_text(None) == "\\N"
    assert encoding.copy_text(b"\x01\xff") == "\\\\x01ff"



def test_generated_ids_are_time_ordered_version_7_uuids(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    ids = fastpath.Ids()
    before = time.time_ns() // 1_000_000
    drawn = [uuid.UUID(int=ids.next()) for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in drawn)
    assert drawn == sorted(drawn) and len(set(drawn)) == len(drawn)
    assert before <= drawn[0].int >> 80 <= drawn[-1].int >> 80 <= after + 2
    # A clock that stalls or steps back, and more than 4,096 ids in one millisecond: still
    # strictly increasing.
    monkeypatch.setattr(fastpath.time, "time_ns", lambda: 1_600_000_000_000_000_000)
    stalled = [ids.next() for _ in range(10_000)]
    assert stalled == sorted(set(stalled)) and stalled[0] > drawn[-1].int
    assert all(uuid.UUID(int=n).version == 7 for n in stalled)


def test_array_literals_quote_every_element() -> None:
    values = ["a", "NULL", 'x"y', "b\\c", "", "é,{}"]
    assert encoding.text_array(values) == '{"a","NULL","x\\"y","b\\\\c","","é,{}"}'
    assert encoding.bytea_array([b"\x00\x01", b""]) == '{"\\\\x0001","\\\\x"}'


# ---- PostgreSQL: the direct path and its fallback ----------------------------------------------

def test_direct_path_writes_time_ordered_ids_and_needs_no_fallback(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    _, provider_id = new_provider(app, client)
    ids = [valid_id_number(5950 + n) for n in range(3)]
    rows = [row(f"d-{n}", ids[n % 3], code) for n, code in enumerate(
        ["court.dishonest_debtor", "traffic.violation_minor", "volunteer.model",
         "blood.donation", "bike.default"])]
    first = run_import(app, provider_id, write_csv(tmp_path / "d.csv", rows), batch_size=2)
    assert (first.created, first.redone) == (5, 0)
    written = records(app, provider_id)
    assert all(r.id.version == 7 for r in written.values())
    again = run_import(app, provider_id, write_csv(tmp_path / "d.csv", rows), batch_size=2)
    assert (again.created, again.unchanged, again.redone) == (0, 5, 0)


def test_a_chunk_that_meets_a_concurrent_writer_is_redone_with_on_conflict(
        app: Flask, client: FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps: Deps = app.extensions["xinyi"]
    if deps.db.engine.dialect.name != "postgresql":
        pytest.skip("the direct COPY path and its fallback are PostgreSQL's")
    _, provider_id = new_provider(app, client)
    ids = [valid_id_number(5900 + n) for n in range(4)]
    first = [row("c-1", ids[0], "court.dishonest_debtor"), row("c-2", ids[1]),
             row("c-3", ids[2], "volunteer.model")]
    done = run_import(app, provider_id, write_csv(tmp_path / "a.csv", first))
    assert (done.created, done.redone) == (3, 0)
    before = (count(app, CreditRecord), count(app, ListEntry), count(app, OutboxEvent),
              count(app, Subject))

    # What another import commits between this one's look-ups and its COPY: the look-ups find
    # nothing, as just before the other one committed. The COPY then meets a unique violation.
    monkeypatch.setattr(writers, "text_array", lambda values: "{}")
    monkeypatch.setattr(writers, "bytea_array", lambda values: "{}")
    rejects = tmp_path / "rejects.csv"
    raced = run_import(app, provider_id, write_csv(tmp_path / "b.csv", [
        first[0],                                   # unchanged black-list record
        row("c-2", ids[1], "blood.donation"),       # the ref with other content
        row("c-4", ids[0], "telecom.fraud"),        # new, black list
        row("c-5", ids[3]),                         # new, a new subject
    ]), reject_path=rejects, batch_size=10)
    assert (raced.created, raced.unchanged, raced.rejected, raced.redone) == (2, 1, 1, 1)
    assert [(r["line"], r["ref"], r["reason"].split(":")[0])
            for r in read_rejects(rejects)] == [("3", "c-2", "duplicate_reference")]
    kept = records(app, provider_id)
    assert kept["c-2"].catalogue_code == "traffic.violation_minor"
    assert kept["c-4"].catalogue_code == "telecom.fraud"
    assert (count(app, CreditRecord), count(app, ListEntry), count(app, OutboxEvent),
            count(app, Subject)) == (before[0] + 2, before[1] + 1, before[2] + 1, before[3] + 1)

    # Only the subjects raced (new refs, a person just created by the other import).
    monkeypatch.undo()
    monkeypatch.setattr(writers, "bytea_array", lambda values: "{}")
    subjects_only = run_import(app, provider_id, write_csv(tmp_path / "c.csv", [
        row("c-6", ids[3]), row("c-7", valid_id_number(5920))]))
    assert (subjects_only.created, subjects_only.redone) == (2, 1)
    assert count(app, Subject) == before[3] + 2
    assert count(app, Subject, Subject.district.is_(None)) == 0  # the staged way keeps it too
    assert count(app, CreditRecord) == before[0] + 4
