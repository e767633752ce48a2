"""Who may repair what, and how (pure): a refusal lists exactly what is missing.

* only a negative record, of an item whose catalogue rules allow repair at all;
* not before its earliest repair date ("possible from 2027-03-01");
* by volunteering only where the item allows it, never for a serious record, and with the
  item's hours served on or after the record's date and not yet used by another repair
  ("12 more hours");
* charity or a fulfilled obligation with evidence (text or attachments);
* always with the credit commitment (信用承诺) accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from xinyi.records.service import RecordFacts
from xinyi.volunteering.service import missing_hours

BASIS_ZH = {"volunteer_hours": "志愿服务", "charity": "慈善捐助",
            "fulfilled_obligation": "履行法定义务"}
SEVERITY_ZH = {"minor": "轻微", "general": "一般", "serious": "严重"}


@dataclass(frozen=True, slots=True)
class Shortfall:
    """One thing the application lacks: the field it concerns, the rule, and what to do."""

    field: str
    rule: str
    message: str


def shortfalls(record: RecordFacts, *, basis: str, today: date, available_minutes: int,
               has_evidence: bool, commitment_accepted: bool) -> list[Shortfall]:
    out: list[Shortfall] = []
    if record.polarity != "negative":
        return [Shortfall("record_id", "not_negative", "only a negative record is repaired")]
    if record.repair_after_months is None:
        return [Shortfall("record_id", "not_repairable",
                          "the catalogue rules do not allow this item to be repaired; it "
                          f"stops being shown on {record.display_until.isoformat()}")]
    if record.repair_from is not None and today < record.repair_from:
        out.append(Shortfall("record_id", "earliest_repair_date",
                             f"possible from {record.repair_from.isoformat()}"))
    if basis == "volunteer_hours":
        if record.severity == "serious":
            out.append(Shortfall("basis", "serious_not_by_volunteering",
                                 "serious records are never repaired by volunteering alone"))
        elif not record.repairable_by_volunteering or record.repair_hours_required is None:
            out.append(Shortfall("basis", "not_by_volunteering",
                                 "the catalogue rules do not allow repairing this item by "
                                 "volunteering"))
        else:
            more = missing_hours(record.repair_hours_required, available_minutes)
            if more:
                out.append(Shortfall(
                    "basis", "hours_required",
                    f"{more} more hours of volunteer service are needed "
                    f"({record.repair_hours_required} required, served on or after "
                    f"{record.occurred_on.isoformat()} and not used by another repair)"))
    elif not has_evidence:
        out.append(Shortfall("evidence", "evidence_required",
                             f"evidence of the {basis.replace('_', ' ')} (text or attachments) "
                             "is needed"))
    if not commitment_accepted:
        out.append(Shortfall("commitment_accepted", "commitment_required",
                             "the credit commitment (信用承诺) must be accepted"))
    return out
