"""Messages to people (SMS and push) behind a port: the app factory chooses the sender.

A message names a *template* and its parameters; the sender renders and delivers it. Nothing
here logs a number or a text: the development sender records only that a message went out and
which template it used. Registration warns a phone's owner through it; benefit sessions and
repairs use it for their notices.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from xinyi.pii import PhoneNumber

log = logging.getLogger(__name__)

# What each template says, so every implementation renders the same message.
TEMPLATES: Mapping[str, str] = {
    "registration_attempt": (
        "【信易+】有人尝试用您的手机号注册信易+账号。如果是您本人，请直接登录；"
        "如忘记密码请在应用内找回。如非本人操作，请忽略本短信。"),
    # Notices to the citizen's inbox (xinyi.notifications), some also by SMS.
    "benefit_session_overdue": (
        "【信易+】您在{partner}的{benefit}已于{due_date}到期，请尽快归还或结清。"),
    "benefit_session_defaulted": (
        "【信易+】{partner}报告您的{benefit}未履约（应付{amount_yuan}元）。请在{grace_until}前"
        "结清，结清后不记入信用记录；逾期将记为失信记录，您可以提出异议。"),
    "benefit_session_recorded": (
        "【信易+】您在{partner}的{benefit}宽限期已满仍未结清，已记入信用记录"
        "（{item}）。如有异议，可在应用内对该记录提出异议。"),
    "repair_received": (
        "【信易+】您对“{record}”的信用修复申请已于{received_on}受理，"
        "将在{due_on}前作出决定。"),
    "repair_approved": (
        "【信易+】您对“{record}”的信用修复申请已获准予，该信息已不再公示、不再计入评分。"
        "决定书可在应用内查看。"),
    "repair_rejected": (
        "【信易+】您对“{record}”的信用修复申请未获准予，理由及重新申请的方式见决定书。"),
    "dispute_received": (
        "【信易+】您对“{record}”提出的异议已于{received_on}受理，将在{due_on}前办结；"
        "处理期间该信息标注为“异议处理中”。"),
    "commitment_breached": (
        "【信易+】{provider}报告您未履行{signed_on}作出的“{title}”。宽限期至{record_on}，"
        "期满后将记入信用记录（{item}）；如有误，请与该单位联系，记入后也可在应用内提出异议。"),
    "commitment_breach_recorded": (
        "【信易+】您未履行“{title}”的情况已记入信用记录（{item}）。"
        "如有异议，可在应用内对该记录提出异议。"),
    "report_forwarded": (
        "【信易+】您的举报（编号{reference}）已受理，并已转交有关单位核查处理。"),
    "report_rejected": (
        "【信易+】您的举报（编号{reference}）经审核不予受理，理由可在应用内查看。"),
    "report_rewarded": (
        "【信易+】您的举报（编号{reference}）经核实属实，奖励{reward_yuan}元，"
        "领取方式可在应用内查看。"),
    "dispute_resolved": (
        "【信易+】您对“{record}”提出的异议已办结，结果：{outcome}。详情可在应用内查看。"),
    "decision_review_received": (
        "【信易+】您对“{decision}”提出的人工复核申请已于{received_on}受理，"
        "将在{due_on}前作出复核结论。"),
    "decision_review_decided": (
        "【信易+】您对“{decision}”提出的人工复核已有结论：{outcome}。理由可在应用内查看。"),
}


@dataclass(frozen=True)
class Message:
    template: str
    params: Mapping[str, str]

    def text(self) -> str:
        return TEMPLATES[self.template].format(**self.params)


class Sender(Protocol):
    def send_sms(self, to: PhoneNumber, message: Message) -> None: ...


class LogOnlySender:
    """Development: delivers nothing, and logs only that a message of a template went out."""

    def send_sms(self, to: PhoneNumber, message: Message) -> None:
        del to  # never logged
        message.text()  # a template that cannot render fails here, as a real sender would
        log.info("message sent", extra={"event": "message_sent", "channel": "sms",
                                        "template": message.template})


SENDERS = ("log",)


def make_sender(kind: str) -> Sender:
    if kind == "log":
        return LogOnlySender()
    raise ValueError(f"unknown message sender {kind!r}")
