"""Each automated decision in words a citizen can read: what was decided, by which rule, from
which inputs. The facts come from the domains that made the decisions; this module only
words them (a Chinese summary and the rule's text) and gives each a stable id:
``<kind>:<source uuid>``, and ``session_outcome:<session uuid>:<step>`` for the steps of a
benefit session."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from xinyi.benefits.outcomes import SessionOutcome
from xinyi.credentials.verification import EligibilityAnswer
from xinyi.errors import ValidationFailed
from xinyi.records.entries import ListEntryFacts
from xinyi.scoring import rules
from xinyi.scoring.service import ScoreChangeView
from xinyi.timeutil import CHINA

KINDS = ("score_change", "tier_change", "eligibility", "session_outcome", "list_entry")
KIND_ZH = {"score_change": "信用分变动", "tier_change": "信用等级变动",
           "eligibility": "信用核验答复", "session_outcome": "信用服务单处理",
           "list_entry": "红黑名单认定"}
SESSION_STEPS = ("overdue", "defaulted", "recorded")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ID = re.compile(rf"(?P<kind>score_change|tier_change|eligibility|list_entry):(?P<id>{_UUID})"
                 rf"|session_outcome:(?P<sid>{_UUID}):(?P<step>overdue|defaulted|recorded)")
MAX_ID_LENGTH = 100
#: The id's form as the OpenAPI document states it (the same as :data:`_ID`).
ID_PATTERN = (rf"^((score_change|tier_change|eligibility|list_entry):{_UUID}"
              rf"|session_outcome:{_UUID}:(overdue|defaulted|recorded))$")
LIST_ZH = {"red": "红名单", "black": "黑名单"}
SEVERITY_ZH = {"minor": "轻微", "general": "一般", "serious": "严重"}


class InvalidDecisionId(ValidationFailed):
    code = "invalid_decision_id"
    title = "This is not the id of a decision"


@dataclass(frozen=True)
class DecisionRef:
    kind: str
    source_id: uuid.UUID
    step: str | None = None

    def __str__(self) -> str:
        base = f"{self.kind}:{self.source_id}"
        return f"{base}:{self.step}" if self.step else base


def parse_id(text: str) -> DecisionRef:
    """The decision an id names; anything but the exact, lower-case form is refused (422)."""
    match = _ID.fullmatch(text) if len(text) <= MAX_ID_LENGTH else None
    if match is None:
        raise InvalidDecisionId.at(
            "decision_id", "must be <kind>:<uuid> (kind one of " + ", ".join(KINDS)
            + ") or session_outcome:<uuid>:<overdue|defaulted|recorded>", location="path")
    if match["kind"]:
        return DecisionRef(match["kind"], uuid.UUID(match["id"]))
    return DecisionRef("session_outcome", uuid.UUID(match["sid"]), match["step"])


@dataclass(frozen=True)
class Rule:
    code: str
    text_zh: str


@dataclass(frozen=True)
class Decision:
    id: str
    kind: str
    decided_at: datetime
    outcome: str
    summary_zh: str
    rule: Rule
    inputs: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """The decision as JSON, as it stands now (kept with a review)."""
        return {"id": self.id, "kind": self.kind, "decided_at": self.decided_at.isoformat(),
                "outcome": self.outcome, "summary_zh": self.summary_zh,
                "rule": {"code": self.rule.code, "text_zh": self.rule.text_zh},
                "inputs": self.inputs}

    @property
    def label_zh(self) -> str:
        """How a notice names it: its kind and its day (Asia/Shanghai)."""
        return f"{KIND_ZH[self.kind]}（{self.decided_at.astimezone(CHINA):%Y年%m月%d日}）"


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _day(at: datetime) -> str:
    return f"{at.astimezone(CHINA):%Y年%m月%d日}"


def _yuan(fen: int | None) -> str:
    return f"{(fen or 0) // 100}.{(fen or 0) % 100:02d}"


SCORE_RULE = Rule("score.sum", (
    f"信用分 = 基础分{rules.SCORE_BASE}分 + 每条有效信用记录的分值之和 + 本年度志愿服务加分"
    f"（每满1小时{rules.HOURS_BONUS_POINTS_PER_HOUR}分，每年最多"
    f"{rules.HOURS_BONUS_YEARLY_CAP * rules.HOURS_BONUS_POINTS_PER_HOUR}分），结果限定在"
    f"{rules.SCORE_MIN}–{rules.SCORE_MAX}分之间。已过展示期、已修复或已撤回的记录不计分。"))
TIER_RULE = Rule("score.tier", "信用等级按信用分划分：" + "，".join(
    f"{tier} ≥ {lowest}分" for tier, lowest in rules.TIER_THRESHOLDS)
    + f"，低于{rules.TIER_THRESHOLDS[-1][1]}分为{rules.TIER_LOWEST}。")
_TIER_ORDER = [t for t, _ in rules.TIER_THRESHOLDS] + [rules.TIER_LOWEST]


def score_change(change: ScoreChangeView) -> Decision:
    if change.score_from is None:
        outcome, summary = "set", f"您的信用分首次计算为{change.score_to}分（{change.tier_to}级）。"
    else:
        outcome = "raised" if change.score_to > change.score_from else "lowered"
        summary = (f"您的信用分由{change.score_from}分{'上调' if outcome == 'raised' else '下调'}"
                   f"为{change.score_to}分。")
    summary += (f"计算依据：基础分{rules.SCORE_BASE}分，{change.records_counted}条有效记录合计"
                f"{change.record_points:+d}分，志愿服务加分{change.hours_bonus}分。")
    return Decision(
        id=f"score_change:{change.id}", kind="score_change", decided_at=change.computed_at,
        outcome=outcome, summary_zh=summary, rule=SCORE_RULE, inputs={
            "base": rules.SCORE_BASE, "record_points": change.record_points,
            "records_counted": change.records_counted, "hours_bonus": change.hours_bonus,
            "score_min": rules.SCORE_MIN, "score_max": rules.SCORE_MAX,
            "score_from": change.score_from, "score_to": change.score_to})


def tier_change(change: ScoreChangeView) -> Decision | None:
    """None unless the tier changed (a first score sets a tier, it does not change one)."""
    if change.tier_from is None or change.tier_from == change.tier_to:
        return None
    up = _TIER_ORDER.index(change.tier_to) < _TIER_ORDER.index(change.tier_from)
    return Decision(
        id=f"tier_change:{change.id}", kind="tier_change", decided_at=change.computed_at,
        outcome="raised" if up else "lowered",
        summary_zh=(f"您的信用等级由{change.tier_from}级{'上调' if up else '下调'}为"
                    f"{change.tier_to}级，因为信用分由{change.score_from}分变为"
                    f"{change.score_to}分。"),
        rule=TIER_RULE, inputs={
            "score_from": change.score_from, "score_to": change.score_to,
            "tier_from": change.tier_from, "tier_to": change.tier_to,
            "thresholds": dict(rules.TIER_THRESHOLDS), "lowest_tier": rules.TIER_LOWEST})


def eligibility(answer: EligibilityAnswer, partner_name: str) -> Decision:
    benefit = answer.benefit_name_zh
    inputs = dict(answer.inputs)
    if answer.decision == "eligible":
        said = f"可享受「{benefit}」"
    elif answer.reason == "black_list_entry":
        said = (f"按普通条件服务：您有一条有法律依据的黑名单记录，暂不适用「{benefit}」"
                "（这不是拒绝服务）")
    else:
        said = f"按普通条件服务：未达到「{benefit}」的条件（这不是拒绝服务）"
    summary = f"{partner_name}于{_day(answer.created_at)}核验您的信用凭证，系统答复：{said}。"
    if "score" in inputs:
        summary += (f"依据：当时信用分{inputs['score']}分（{answer.tier}级），"
                    f"该优惠要求{inputs['min_score']}分。")
    else:
        summary += f"依据：当时信用等级{answer.tier}级（更早的答复未保存当时的分数与门槛）。"
    condition = "信用分达到门槛分" + ("并满足无失信记录年限" if "clean_years_required" in inputs
                                  else "")
    rule = Rule(f"benefit.{answer.benefit_code}", (
        f"「{benefit}」：{condition}即可享受；只有有法律依据的黑名单记录才会暂停优惠。"
        "不满足条件时按普通条件服务，信用分绝不用于拒绝服务。"))
    return Decision(
        id=f"eligibility:{answer.id}", kind="eligibility", decided_at=answer.created_at,
        outcome=answer.decision, summary_zh=summary, rule=rule, inputs={
            "partner": partner_name, "benefit": answer.benefit_code, "reason": answer.reason,
            "tier": answer.tier, "limits": answer.limits, "inputs_recorded": bool(inputs),
            **inputs})


def session_steps(outcome: SessionOutcome, partner_name: str, benefit_name: str,
                  item_name: str) -> list[Decision]:
    """One decision per step the system took on the session, the latest first."""
    out = []
    base = {"partner": partner_name, "benefit": outcome.benefit_code,
            "session_id": str(outcome.id), "amount_fen": outcome.amount_fen,
            "waived_fen": outcome.waived_fen, "due_at": _iso(outcome.due_at)}
    for step in outcome.steps:
        at = outcome.at(step)
        if step == "overdue":
            summary = (f"您在{partner_name}的「{benefit_name}」服务单已于{_day(outcome.due_at)}"
                       "到期，到期时未归还或结清，系统将其标为逾期。")
            rule = Rule("session.overdue", "服务单到期时仍未结束，系统标为逾期并通知您；"
                        "逾期本身不记入信用记录。")
            inputs = {**base, "overdue_at": _iso(at)}
        elif step == "defaulted":
            days = outcome.at("defaulted") - outcome.due_at
            summary = (f"您在{partner_name}的「{benefit_name}」服务单到期{days.days}天后仍未结束，"
                       f"系统视为未履约并结束该服务单，应付{_yuan(outcome.amount_owed_fen)}元"
                       "（即先享后付、减免的部分）")
            summary += (f"，宽限期至{_day(outcome.grace_until)}。" if outcome.grace_until
                        else "。")
            rule = Rule("session.auto_default", "逾期服务单在到期日后30天仍未结束的，系统视为"
                        "未履约：应付金额为减免部分，进入宽限期；宽限期内结清不记入信用记录。")
            inputs = {**base, "defaulted_at": _iso(at), "days_after_due": days.days,
                      "auto_default_after_days": 30,
                      "amount_owed_fen": outcome.amount_owed_fen,
                      "grace_until": _iso(outcome.grace_until),
                      "inferred_from_dates": outcome.inferred}
        else:
            summary = (f"您在{partner_name}的「{benefit_name}」服务单宽限期"
                       f"{'（至' + _day(outcome.grace_until) + '）' if outcome.grace_until else ''}"
                       f"已满仍未结清，系统记入一条轻微失信记录（{item_name}）。"
                       "您可以对该记录提出异议。")
            rule = Rule("session.record_after_grace", "未履约且宽限期满仍未结清的，系统按合作机构"
                        "的类别记入一条轻微失信记录，以该服务单为证据；可对记录提出异议。")
            inputs = {**base, "recorded_at": _iso(at), "grace_until": _iso(outcome.grace_until),
                      "record_id": None if outcome.record_id is None else str(outcome.record_id),
                      "catalogue_code": outcome.default_item}
        out.append(Decision(id=f"session_outcome:{outcome.id}:{step}", kind="session_outcome",
                            decided_at=at, outcome=step, summary_zh=summary, rule=rule,
                            inputs=inputs))
    return out[::-1]


def list_entry(entry: ListEntryFacts) -> Decision:
    listed = LIST_ZH[entry.list]
    kind = SEVERITY_ZH.get(entry.severity or "", "")
    summary = (f"因{entry.record_occurred_on:%Y年%m月%d日}的「{entry.item_name_zh}」记录"
               f"（{kind + '失信' if entry.polarity == 'negative' else '守信'}），"
               f"系统于{_day(entry.entered_at)}将您列入{listed}。依据：{entry.legal_basis}")
    if entry.left_at is not None:
        summary += f"（已于{_day(entry.left_at)}移出）"
    if entry.list == "red":
        rule = Rule("list.red", "有法律依据的守信记录列入红名单。")
    else:
        rule = Rule("list.black", "有法律依据的严重失信记录列入黑名单；一般和轻微失信记录、"
                    "以及没有法律依据的记录不列入任何名单。")
    return Decision(
        id=f"list_entry:{entry.id}", kind="list_entry", decided_at=entry.entered_at,
        outcome=entry.list, summary_zh=summary, rule=rule, inputs={
            "record_id": str(entry.record_id), "catalogue_code": entry.catalogue_code,
            "polarity": entry.polarity, "severity": entry.severity,
            "legal_basis": entry.legal_basis,
            "record_occurred_on": entry.record_occurred_on.isoformat(),
            "record_status": entry.record_status, "left_at": _iso(entry.left_at),
            "left_reason": entry.left_reason})
