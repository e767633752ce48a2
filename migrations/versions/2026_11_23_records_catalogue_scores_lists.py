"""records catalogue scores lists

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 11:31:59.519606
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The default catalogue (信用信息目录) and benefit rules as shipped on 2026-11-23, frozen here so
# a later edit of scoring/default_*.json never rewrites what this migration did. Staff edit the
# live rows through /v1/admin/catalogue.
DEFAULT_CATALOGUE = json.loads(
    '[{"code": "volunteer.model", "name_zh": "优秀志愿者", "name_en": "Outstanding volunteer", "polarity": "positive", "severity": null, "domain": "志愿服务", "points": 40, "display_months": 36, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《志愿服务条例》（国务院令第685号）；《国务院关于建立完善守信联合激励和失信联合惩戒制度加快推进社会诚信建设的指导意见》（国发〔2016〕33号）"}, {"code": "volunteer.star_rated", "name_zh": "星级志愿者（三星及以上）", "name_en": "Star-rated volunteer (three stars or more)", "polarity": "positive", "severity": null, "domain": "志愿服务", "points": 15, "display_months": 24, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": null}, {"code": "blood.donation", "name_zh": "无偿献血", "name_en": "Voluntary blood donation", "polarity": "positive", "severity": null, "domain": "医疗卫生", "points": 10, "display_months": 12, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": null}, {"code": "blood.donation_award", "name_zh": "全国无偿献血奉献奖", "name_en": "National award for voluntary blood donation", "polarity": "positive", "severity": null, "domain": "医疗卫生", "points": 30, "display_months": 36, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《中华人民共和国献血法》；《全国无偿献血表彰奖励办法》"}, {"code": "stem_cell.donation", "name_zh": "造血干细胞捐献", "name_en": "Haematopoietic stem cell donation", "polarity": "positive", "severity": null, "domain": "医疗卫生", "points": 40, "display_months": 36, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": null}, {"code": "bravery.act", "name_zh": "见义勇为", "name_en": "Act of bravery for others (confirmed)", "polarity": "positive", "severity": null, "domain": "社会公益", "points": 60, "display_months": 36, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《国务院办公厅转发民政部等部门关于加强见义勇为人员权益保护意见的通知》（国办发〔2012〕39号）"}, {"code": "redlist.moral_model", "name_zh": "道德模范", "name_en": "Moral model", "polarity": "positive", "severity": null, "domain": "社会公益", "points": 60, "display_months": 36, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《国务院关于建立完善守信联合激励和失信联合惩戒制度加快推进社会诚信建设的指导意见》（国发〔2016〕33号）"}, {"code": "redlist.model_worker", "name_zh": "劳动模范", "name_en": "Model worker", "polarity": "positive", "severity": null, "domain": "劳动保障", "points": 50, "display_months": 36, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《国务院关于建立完善守信联合激励和失信联合惩戒制度加快推进社会诚信建设的指导意见》（国发〔2016〕33号）"}, {"code": "redlist.government_award", "name_zh": "获县级以上人民政府表彰奖励", "name_en": "Commended by a people\'s government at county level or above", "polarity": "positive", "severity": null, "domain": "社会公益", "points": 30, "display_months": 36, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《国务院关于建立完善守信联合激励和失信联合惩戒制度加快推进社会诚信建设的指导意见》（国发〔2016〕33号）"}, {"code": "honor.good_person", "name_zh": "“身边好人”", "name_en": "\'Good person next door\' recognition", "polarity": "positive", "severity": null, "domain": "社会公益", "points": 20, "display_months": 24, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": null}, {"code": "tax.grade_a", "name_zh": "纳税信用A级", "name_en": "Tax credit grade A", "polarity": "positive", "severity": null, "domain": "税收缴纳", "points": 20, "display_months": 12, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《纳税信用管理办法（试行）》（国家税务总局公告2014年第40号）；《关于对纳税信用A级纳税人实施联合激励措施的合作备忘录》（发改财金〔2016〕1467号）"}, {"code": "charity.donation", "name_zh": "慈善捐赠", "name_en": "Donation to a registered charity", "polarity": "positive", "severity": null, "domain": "慈善捐助", "points": 10, "display_months": 12, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": null}, {"code": "finance.student_loan_repaid", "name_zh": "国家助学贷款按期还清", "name_en": "State student loan repaid on schedule", "polarity": "positive", "severity": null, "domain": "金融服务", "points": 15, "display_months": 24, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": null}, {"code": "commitment.fulfilled", "name_zh": "信用承诺按期履行", "name_en": "Credit commitment fulfilled", "polarity": "positive", "severity": null, "domain": "政务服务", "points": 5, "display_months": 12, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": null}, {"code": "utility.on_time", "name_zh": "水电气费连续12个月按时缴纳", "name_en": "Utility bills paid on time for 12 months", "polarity": "positive", "severity": null, "domain": "公共事业", "points": 5, "display_months": 12, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": null}, {"code": "library.good_reader", "name_zh": "诚信读者（连续12个月按期归还）", "name_en": "Trustworthy reader (12 months of on-time returns)", "polarity": "positive", "severity": null, "domain": "文化旅游", "points": 5, "display_months": 12, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": null}, {"code": "traffic.safe_driver", "name_zh": "安全文明驾驶（记分周期内无交通违法）", "name_en": "Safe driver (no violation in a scoring cycle)", "polarity": "positive", "severity": null, "domain": "交通安全", "points": 10, "display_months": 12, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": null}, {"code": "traffic.violation_minor", "name_zh": "轻微交通违法（记分3分及以下）", "name_en": "Minor traffic violation (3 points or fewer)", "polarity": "negative", "severity": "minor", "domain": "交通安全", "points": -5, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "traffic.pedestrian_violation", "name_zh": "行人或非机动车交通违法", "name_en": "Traffic violation as pedestrian or cyclist", "polarity": "negative", "severity": "minor", "domain": "交通安全", "points": -5, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "utility.unpaid_bill", "name_zh": "水电气费经催告逾期未缴", "name_en": "Utility bill unpaid after reminder and grace period", "polarity": "negative", "severity": "minor", "domain": "公共事业", "points": -10, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "library.overdue_default", "name_zh": "图书经催告逾期未还", "name_en": "Library book unreturned after reminder and grace period", "polarity": "negative", "severity": "minor", "domain": "文化旅游", "points": -5, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "bike.default", "name_zh": "共享单车费用逾期未结清", "name_en": "Shared-bike charges unpaid after grace period", "polarity": "negative", "severity": "minor", "domain": "低碳出行", "points": -5, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "hospital.pay_later_default", "name_zh": "“先诊疗后付费”逾期未结清", "name_en": "Treat-first-pay-later bill unpaid after grace period", "polarity": "negative", "severity": "minor", "domain": "医疗卫生", "points": -15, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "hotel.default", "name_zh": "免押住宿费用逾期未结清", "name_en": "Deposit-free hotel stay unpaid after grace period", "polarity": "negative", "severity": "minor", "domain": "文化旅游", "points": -10, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "market.default", "name_zh": "市场交易违约（合作机构报送，宽限期满）", "name_en": "Market default reported by a partner after grace period", "polarity": "negative", "severity": "minor", "domain": "市场交易", "points": -10, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "medical.appointment_no_show", "name_zh": "预约挂号多次爽约", "name_en": "Repeatedly missed hospital appointments", "polarity": "negative", "severity": "minor", "domain": "医疗卫生", "points": -5, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "transport.fare_evasion", "name_zh": "乘坐公共交通逃票", "name_en": "Fare evasion on public transport", "polarity": "negative", "severity": "minor", "domain": "交通安全", "points": -10, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "environment.waste_sorting", "name_zh": "违反生活垃圾分类规定受到处罚", "name_en": "Penalised for breaking household waste-sorting rules", "polarity": "negative", "severity": "minor", "domain": "环境保护", "points": -5, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "exam.rule_breach", "name_zh": "考试违纪（非作弊）", "name_en": "Exam rule breach (not cheating)", "polarity": "negative", "severity": "minor", "domain": "教育考试", "points": -10, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "tax.late_filing", "name_zh": "个人所得税逾期申报", "name_en": "Late individual income tax filing", "polarity": "negative", "severity": "minor", "domain": "税收缴纳", "points": -10, "display_months": 3, "repair_after_months": 0, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "commitment.broken", "name_zh": "违反信用承诺", "name_en": "Broken credit commitment", "polarity": "negative", "severity": "general", "domain": "政务服务", "points": -30, "display_months": 12, "repair_after_months": 3, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "traffic.points_full", "name_zh": "驾驶证记满12分", "name_en": "Driving licence reached 12 penalty points", "polarity": "negative", "severity": "general", "domain": "交通安全", "points": -30, "display_months": 12, "repair_after_months": 3, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "finance.student_loan_default", "name_zh": "国家助学贷款违约", "name_en": "Default on a state student loan", "polarity": "negative", "severity": "general", "domain": "金融服务", "points": -40, "display_months": 12, "repair_after_months": 3, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "public_order.penalty", "name_zh": "受到治安管理处罚（罚款）", "name_en": "Fined under the public security administration rules", "polarity": "negative", "severity": "general", "domain": "社会治安", "points": -20, "display_months": 12, "repair_after_months": 3, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "academic.misconduct", "name_zh": "学术不端", "name_en": "Academic misconduct", "polarity": "negative", "severity": "general", "domain": "教育科研", "points": -40, "display_months": 12, "repair_after_months": 3, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "housing.rent_arrears", "name_zh": "公共租赁住房经催告欠缴租金", "name_en": "Public rental housing rent in arrears after reminder", "polarity": "negative", "severity": "general", "domain": "住房保障", "points": -30, "display_months": 12, "repair_after_months": 3, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "tourism.uncivil_conduct", "name_zh": "旅游不文明行为", "name_en": "Uncivil conduct as a tourist", "polarity": "negative", "severity": "general", "domain": "文化旅游", "points": -20, "display_months": 12, "repair_after_months": 3, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "medical.insurance_card_lending", "name_zh": "出借医保凭证", "name_en": "Lending one\'s medical insurance card to others", "polarity": "negative", "severity": "general", "domain": "社会保险", "points": -30, "display_months": 12, "repair_after_months": 3, "repairable_by_volunteering": true, "legal_basis": null}, {"code": "court.dishonest_debtor", "name_zh": "失信被执行人", "name_en": "Dishonest judgment debtor", "polarity": "negative", "severity": "serious", "domain": "司法", "points": -200, "display_months": 24, "repair_after_months": 12, "repairable_by_volunteering": false, "legal_basis": "《最高人民法院关于公布失信被执行人名单信息的若干规定》（法释〔2013〕17号，法释〔2017〕7号修正）第二条、第十条（展示24个月，短于严重失信默认期限，履行义务后由法院删除）"}, {"code": "telecom.fraud", "name_zh": "实施电信网络诈骗", "name_en": "Telecom and online fraud", "polarity": "negative", "severity": "serious", "domain": "通信", "points": -200, "display_months": 36, "repair_after_months": 12, "repairable_by_volunteering": false, "legal_basis": "《中华人民共和国反电信网络诈骗法》第三十一条"}, {"code": "telecom.card_trafficking", "name_zh": "非法买卖、出租、出借电话卡或银行账户", "name_en": "Selling, renting or lending phone cards or bank accounts", "polarity": "negative", "severity": "serious", "domain": "通信", "points": -100, "display_months": 36, "repair_after_months": 12, "repairable_by_volunteering": false, "legal_basis": "《中华人民共和国反电信网络诈骗法》第三十一条"}, {"code": "exam.cheating", "name_zh": "国家教育考试作弊", "name_en": "Cheating in a national education exam", "polarity": "negative", "severity": "serious", "domain": "教育考试", "points": -100, "display_months": 36, "repair_after_months": 12, "repairable_by_volunteering": false, "legal_basis": "《国家教育考试违规处理办法》（教育部令第33号）；《中华人民共和国刑法》第二百八十四条之一"}, {"code": "social_insurance.fraud", "name_zh": "骗取社会保险待遇", "name_en": "Social insurance fraud", "polarity": "negative", "severity": "serious", "domain": "社会保险", "points": -150, "display_months": 36, "repair_after_months": 12, "repairable_by_volunteering": false, "legal_basis": "《中华人民共和国社会保险法》第八十八条"}, {"code": "medical.insurance_fraud", "name_zh": "骗取医疗保障基金", "name_en": "Medical insurance fund fraud", "polarity": "negative", "severity": "serious", "domain": "社会保险", "points": -150, "display_months": 36, "repair_after_months": 12, "repairable_by_volunteering": false, "legal_basis": "《医疗保障基金使用监督管理条例》（国务院令第735号）"}, {"code": "tax.major_violation", "name_zh": "重大税收违法失信主体", "name_en": "Major tax violation (published dishonest taxpayer)", "polarity": "negative", "severity": "serious", "domain": "税收缴纳", "points": -150, "display_months": 36, "repair_after_months": 12, "repairable_by_volunteering": false, "legal_basis": "《重大税收违法失信主体信息公布管理办法》（国家税务总局令第54号）"}, {"code": "finance.illegal_fundraising", "name_zh": "非法集资", "name_en": "Illegal fundraising", "polarity": "negative", "severity": "serious", "domain": "金融服务", "points": -200, "display_months": 36, "repair_after_months": 12, "repairable_by_volunteering": false, "legal_basis": "《防范和处置非法集资条例》（国务院令第737号）"}, {"code": "medical.order_disruption", "name_zh": "严重危害正常医疗秩序", "name_en": "Seriously disrupting medical order (e.g. violence against staff)", "polarity": "negative", "severity": "serious", "domain": "医疗卫生", "points": -150, "display_months": 36, "repair_after_months": 12, "repairable_by_volunteering": false, "legal_basis": "《关于对严重危害正常医疗秩序的失信行为责任人实施联合惩戒合作备忘录》（发改财金〔2018〕1399号）"}, {"code": "traffic.drunk_driving", "name_zh": "醉酒驾驶机动车被吊销驾驶证", "name_en": "Driving licence revoked for drunk driving", "polarity": "negative", "severity": "serious", "domain": "交通安全", "points": -120, "display_months": 60, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《中华人民共和国道路交通安全法》第九十一条（吊销驾驶证，五年内不得重新取得）"}, {"code": "transport.rail_restricted", "name_zh": "铁路严重失信（限制乘坐火车）", "name_en": "Serious railway dishonesty (train travel restricted)", "polarity": "negative", "severity": "serious", "domain": "交通安全", "points": -80, "display_months": 6, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《关于在一定期限内适当限制特定严重失信人乘坐火车推动社会信用体系建设的意见》（发改财金〔2018〕384号）（限制期满自动移出）"}, {"code": "transport.air_restricted", "name_zh": "民航严重失信（限制乘坐民用航空器）", "name_en": "Serious civil aviation dishonesty (air travel restricted)", "polarity": "negative", "severity": "serious", "domain": "交通安全", "points": -80, "display_months": 12, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《关于在一定期限内适当限制特定严重失信人乘坐民用航空器推动社会信用体系建设的意见》（发改财金〔2018〕385号）（限制期满自动移出）"}, {"code": "food.license_revoked_responsible", "name_zh": "食品生产经营许可证被吊销的直接责任人", "name_en": "Person responsible when a food licence was revoked", "polarity": "negative", "severity": "serious", "domain": "食品药品", "points": -150, "display_months": 60, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《中华人民共和国食品安全法》第一百三十五条（五年内不得申请食品生产经营许可）"}, {"code": "housing.subsidised_fraud", "name_zh": "以欺骗手段取得保障性住房", "name_en": "Obtaining subsidised housing by deception", "polarity": "negative", "severity": "serious", "domain": "住房保障", "points": -100, "display_months": 60, "repair_after_months": null, "repairable_by_volunteering": false, "legal_basis": "《公共租赁住房管理办法》（住房和城乡建设部令第11号）（五年内不得再次申请）"}]'
)
DEFAULT_BENEFITS = json.loads(
    '[{"code": "library.deposit_free", "partner_kind": "library", "name_zh": "信易阅·免押金借书", "name_en": "Deposit-free library lending", "min_score": 600, "limits": {"max_books": 5, "deposit_waived_fen": 10000}}, {"code": "bike.deposit_free", "partner_kind": "bike", "name_zh": "信易行·共享单车免押骑行", "name_en": "Deposit-free shared bikes", "min_score": 600, "limits": {"deposit_waived_fen": 29900}}, {"code": "hospital.pay_later", "partner_kind": "hospital", "name_zh": "信易医·先诊疗后付费", "name_en": "Treat first, pay later", "min_score": 700, "limits": {"credit_line_fen": 200000}}, {"code": "hotel.deposit_free", "partner_kind": "hotel", "name_zh": "免押信用住", "name_en": "Deposit-free hotel stay", "min_score": 650, "limits": {"deposit_waived_fen": 50000}}, {"code": "scenic.discount", "partner_kind": "scenic_spot", "name_zh": "信易游·景区门票优惠", "name_en": "Scenic spot ticket discount", "min_score": 700, "limits": {"discount_percent": 20, "max_discount_fen": 5000}}, {"code": "campus.sport_venue", "partner_kind": "campus_sport", "name_zh": "校园健身·体育场地免押预约", "name_en": "Deposit-free booking of campus sport venues", "min_score": 600, "limits": {"deposit_waived_fen": 5000, "max_bookings_per_week": 3}}, {"code": "gov.green_channel", "partner_kind": "government_service", "name_zh": "行政许可“绿色通道”和“容缺受理”", "name_en": "Green channel and acceptance with documents to follow for administrative licences", "min_score": 700, "limits": {"clean_years": 3}}]'
)

# Two-letter codes that stand for a benefit inside the QR credential's `ben` claim: full codes
# would not fit a version-15 QR at level M (DESIGN §5); /v1/benefits publishes the mapping.
QR_CODES = {
    "library.deposit_free": "lb",
    "bike.deposit_free": "bk",
    "hospital.pay_later": "hp",
    "hotel.deposit_free": "ht",
    "scenic.discount": "sc",
    "campus.sport_venue": "cs",
    "gov.green_channel": "gc",
}


def upgrade() -> None:
    op.create_table(
        "benefit_rules",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("partner_kind", sa.String(length=32), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("min_score", sa.Integer(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("qr_code", sa.String(length=4), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_benefit_rules")),
        sa.UniqueConstraint("qr_code", name=op.f("uq_benefit_rules_qr_code")),
    )
    op.create_table(
        "catalogue_items",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("polarity", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.Column("domain", sa.String(length=64), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("display_months", sa.Integer(), nullable=False),
        sa.Column("repair_after_months", sa.Integer(), nullable=True),
        sa.Column("repairable_by_volunteering", sa.Boolean(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(polarity = 'positive' AND points > 0 AND severity IS NULL) OR (polarity = 'negative' AND points < 0 AND severity IN ('minor', 'general', 'serious'))",
            name=op.f("ck_catalogue_items_points_match_polarity"),
        ),
        sa.CheckConstraint(
            "polarity IN ('positive', 'negative')", name=op.f("ck_catalogue_items_polarity_known")
        ),
        sa.CheckConstraint("display_months > 0", name=op.f("ck_catalogue_items_display_positive")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_catalogue_items")),
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_events_pending", ["published_at", "created_at"], unique=False
        )

    op.create_table(
        "subjects",
        sa.Column("bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("id_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bidx", name=op.f("pk_subjects")),
    )
    op.create_table(
        "access_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("actor_type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("consent_id", sa.Uuid(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_bidx"], ["subjects.bidx"], name=op.f("fk_access_log_subject_bidx_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
        sa.UniqueConstraint("subject_bidx", "seq", name="uq_access_log_subject_seq"),
    )
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.create_index("ix_access_log_created_at", ["created_at"], unique=False)

    op.create_table(
        "credit_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("provider_ref", sa.String(length=128), nullable=False),
        sa.Column("content_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("catalogue_code", sa.String(length=64), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("occupation", sa.String(length=32), nullable=True),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("display_months", sa.Integer(), nullable=False),
        sa.Column("repair_after_months", sa.Integer(), nullable=True),
        sa.Column("display_until", sa.Date(), nullable=False),
        sa.Column("repair_from", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("archived_reason", sa.String(length=16), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(status = 'active' AND archived_reason IS NULL) OR (status = 'archived' AND archived_reason IN ('expired', 'repaired', 'withdrawn'))",
            name=op.f("ck_credit_records_archive_reason_matches"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'archived')", name=op.f("ck_credit_records_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["catalogue_code"],
            ["catalogue_items.code"],
            name=op.f("fk_credit_records_catalogue_code_catalogue_items"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["api_clients.id"],
            name=op.f("fk_credit_records_provider_id_api_clients"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_bidx"],
            ["subjects.bidx"],
            name=op.f("fk_credit_records_subject_bidx_subjects"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_records")),
        sa.UniqueConstraint("provider_id", "provider_ref", name="uq_credit_records_provider_ref"),
    )
    with op.batch_alter_table("credit_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credit_records_status_display", ["status", "display_until"], unique=False
        )
        batch_op.create_index(
            "ix_credit_records_subject_status", ["subject_bidx", "status"], unique=False
        )

    op.create_table(
        "credit_scores",
        sa.Column("subject_bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("tier", sa.String(length=4), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subject_bidx"], ["subjects.bidx"], name=op.f("fk_credit_scores_subject_bidx_subjects")
        ),
        sa.PrimaryKeyConstraint("subject_bidx", name=op.f("pk_credit_scores")),
    )
    op.create_table(
        "list_entries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_bidx", sa.LargeBinary(length=32), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("list", sa.String(length=8), nullable=False),
        sa.Column("catalogue_code", sa.String(length=64), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_reason", sa.String(length=16), nullable=True),
        sa.CheckConstraint("list IN ('red', 'black')", name=op.f("ck_list_entries_list_known")),
        sa.ForeignKeyConstraint(
            ["catalogue_code"],
            ["catalogue_items.code"],
            name=op.f("fk_list_entries_catalogue_code_catalogue_items"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["credit_records.id"],
            name=op.f("fk_list_entries_record_id_credit_records"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_bidx"], ["subjects.bidx"], name=op.f("fk_list_entries_subject_bidx_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_list_entries")),
    )
    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_list_entries_record_id"), ["record_id"], unique=False)
        batch_op.create_index(
            "ix_list_entries_subject_open", ["subject_bidx", "left_at"], unique=False
        )

    now = datetime.now(UTC)
    catalogue = sa.table(
        "catalogue_items",
        *(
            sa.column(c)
            for c in (
                "code",
                "name_zh",
                "name_en",
                "polarity",
                "severity",
                "domain",
                "points",
                "display_months",
                "repair_after_months",
                "repairable_by_volunteering",
                "legal_basis",
            )
        ),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(catalogue, [{**item, "updated_at": now} for item in DEFAULT_CATALOGUE])
    benefits = sa.table(
        "benefit_rules",
        sa.column("code"),
        sa.column("partner_kind"),
        sa.column("name_zh"),
        sa.column("name_en"),
        sa.column("min_score"),
        sa.column("limits", sa.JSON),
        sa.column("qr_code"),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    op.bulk_insert(
        benefits,
        [
            {**rule, "qr_code": QR_CODES[rule["code"]], "updated_at": now}
            for rule in DEFAULT_BENEFITS
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("list_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_list_entries_subject_open")
        batch_op.drop_index(batch_op.f("ix_list_entries_record_id"))

    op.drop_table("list_entries")
    op.drop_table("credit_scores")
    with op.batch_alter_table("credit_records", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_records_subject_status")
        batch_op.drop_index("ix_credit_records_status_display")

    op.drop_table("credit_records")
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_index("ix_access_log_created_at")

    op.drop_table("access_log")
    op.drop_table("subjects")
    with op.batch_alter_table("outbox_events", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_events_pending")

    op.drop_table("outbox_events")
    op.drop_table("catalogue_items")
    op.drop_table("benefit_rules")
