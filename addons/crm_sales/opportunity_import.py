"""Import of opportunities (销售机会导入) from CSV and Excel files, through the core's import
(``register_import_objects``; the button is on the opportunity list).

The core does the pages, the mapping, the dry run, the background run, custom fields, the owner column, the
audit trail and undo (the created opportunities go to the recycle bin with their stage history); this module
says which fields a column can go to and checks, per chunk and set-based, what the core cannot know:

* the **customer** by its external id or its name, among the customers the importer may see (a customer not
  found, hidden or ambiguous fails the row with its reason); the **decision maker** by name among that
  customer's contacts;
* amounts to the fen (``1,234.50``; at most two decimals, never negative; a comma separates thousands only, so
  "1,5" fails the row instead of becoming 15; at most :data:`core.crm.money.MAX_AMOUNT`, also in the company
  currency, what SQLite keeps exactly), the **currency** among the active ones (default the company's) and the
  amount in the company currency (what the funnel sums), the owner's team (default owner: the importer);
* the **stage** by its name (as shown in zh_CN, zh_TW or English, or as stored) in the row's **sales process**
  (by name; default the default process; default stage its first open one). Its **required fields are
  enforced as a move through the stages enforces them** (:func:`.stages.missing_fields`; products and
  competitors excepted, as :func:`.opportunities.create_opportunity` does, since a file cannot carry them): a row
  missing some fails with the list of those fields; lost and abandoned stages need a reason of the list.
  Each created opportunity gets its first :class:`~.models.StageChange`, as the form's.
* "update" / "create or update" find opportunities by their **id** (as exported) or their **name**. An
  update does not move an opportunity to another stage (moves have their own rules, reasons and history: the
  record page and the board do them): such a row fails with its reason. The stage's required fields are then
  checked against the record's values merged with the row's.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, select

from core.crm import money, normalise
from core.crm.imports_fields import ImportField, ImportObject
from core.extensions import db
from core.models import User
from core.params import ascii_int, odd_digits

from . import stages
from .models import Opportunity, SalesProcess, StageChange
from .opportunities import SOURCE, default_close_date

#: which derived columns an update changes with which typed column (:func:`resolve` computes them)
DERIVED = {
    "name": ("search_name",),
    "amount": ("amount_company",),
    "currency": ("amount_company",),
    "owner_id": ("team_id",),
}
#: what an undo restores or keeps together (``ImportObject.companions``): the amount and the budget are in the
#: opportunity's currency — 7,500 typed after an import that made 6,000 USD into 7,000 EUR is EUR 7,500, never
#: USD 7,500 beside the EUR company amount (the expense budget is in the company's currency)
COMPANIONS = {"amount": ("currency",), "budget": ("currency",)}
MONEY_FIELDS = ("amount", "budget", "expense_budget")
_YES_NO = {"1": _l("Yes"), "0": _l("No")}


def _to_id(value) -> int:
    return int(value)


def prepare(values: dict) -> None:
    """The name's search key; an id cell as a number (the key of "update by id")."""
    if "name" in values:
        values["search_name"] = normalise.search_key(values["name"])
    if "id" in values and (record_id := ascii_int(values["id"])) is not None:
        values["id"] = record_id


def fields() -> list[ImportField]:
    return [
        ImportField("id", _l("ID"), "text", "id", 18, lookup=True,
                    synonyms=("编号", "編號", "机会编号", "機會編號", "id", "opportunityid")),
        ImportField("name", _l("Name"), "text", "name", 255, required=True, lookup=True,
                    synonyms=("机会名称", "機會名稱", "销售机会", "銷售機會", "商机名称", "商機名稱", "项目名称", "項目名稱",
                              "名称", "名稱", "name", "opportunity", "opportunityname")),
        ImportField("customer", _l("Customer"), "text", "customer_id", 255, required=True,
                    synonyms=("客户", "客戶", "客户名称", "客戶名稱", "客户编号", "客戶編號", "公司", "customer",
                              "customername", "account", "accountname", "company")),
        ImportField("contact", _l("Decision maker"), "text", "contact_id", 128,
                    synonyms=("决策人", "決策人", "联系人", "聯繫人", "聯絡人", "decisionmaker", "contact")),
        ImportField("amount", _l("Amount"), "text", "amount", 32,
                    synonyms=("金额", "金額", "预计金额", "預計金額", "机会金额", "機會金額", "amount", "value")),
        ImportField("currency", _l("Currency"), "text", "currency", 8,
                    synonyms=("币种", "幣種", "幣別", "货币", "貨幣", "currency")),
        ImportField("close_date", _l("Close date"), "date", "close_date",
                    synonyms=("预计成交日期", "預計成交日期", "成交日期", "结单日期", "結單日期", "closedate",
                              "expectedclosedate")),
        ImportField("process", _l("Sales process"), "text", "process_id", 128,
                    synonyms=("业务模式", "業務模式", "销售流程", "銷售流程", "process", "salesprocess")),
        ImportField("stage", _l("Stage"), "text", "stage_id", 128,
                    synonyms=("阶段", "階段", "销售阶段", "銷售階段", "stage", "salesstage")),
        ImportField("lost_reason", _l("Reason lost"), "picklist", "lost_reason", picklist=stages.LOST_REASON,
                    synonyms=("丢单原因", "丟單原因", "输单原因", "輸單原因", "lostreason")),
        ImportField("source", _l("Source"), "picklist", "source", picklist=SOURCE,
                    synonyms=("来源", "來源", "机会来源", "機會來源", "source")),
        ImportField("budget_known", _l("Budget known"), "choice", "budget_known", choices=_YES_NO,
                    synonyms=("预算已知", "預算已知", "有预算", "有預算", "budgetknown")),
        ImportField("budget", _l("Budget"), "text", "budget", 32, synonyms=("预算", "預算", "budget")),
        ImportField("pain_points", _l("Pain points"), "text", "pain_points", 4000,
                    synonyms=("痛点", "痛點", "需求", "painpoints", "need")),
        ImportField("goals", _l("Goals"), "text", "goals", 4000, synonyms=("目标", "目標", "goals")),
        ImportField("purchase_date", _l("Expected purchase date"), "date", "purchase_date",
                    synonyms=("预计采购日期", "預計採購日期", "采购日期", "採購日期", "purchasedate")),
        ImportField("expense_budget", _l("Expense budget"), "text", "expense_budget", 32,
                    synonyms=("费用预算", "費用預算", "expensebudget")),
        ImportField("description", _l("Description"), "text", "description", 4000,
                    synonyms=("备注", "備註", "描述", "说明", "說明", "description", "notes", "remark")),
        ImportField("owner", _l("Owner"), "owner", "owner_id",
                    synonyms=("负责人", "負責人", "所有人", "销售", "銷售", "业务员", "業務員", "owner", "salesrep")),
    ]


# -- the per-chunk checks -------------------------------------------------------------------------------------
def _fold(text) -> str:
    """A name as compared (contacts, processes, stages): width, case, invisible characters, Traditional as
    Simplified — as the customer beside it is found (``search_key``)."""
    return normalise.fold_characters(unicodedata.normalize("NFKC", str(text or "")).strip().casefold())


def _money(text: str) -> Decimal:
    """An amount cell as a Decimal: ``ValueError`` with the row's reason (translated) if it is none. A ``¥``
    (``￥``) or ``$`` before it, spaces, full-width digits (folded by NFKC) are fine; a comma or a space separates
    thousands only (:func:`core.crm.money.parse_amount`: "1,5" is refused, never read as 15); at most two
    decimals, not negative, at most :data:`core.crm.money.MAX_AMOUNT` (what every database keeps exactly). A digit
    that is not a decimal one (superscript "²", circled "①") is refused before NFKC would make "1²" into 12."""
    if odd_digits(text):
        raise ValueError(_bad_amount(text))
    number = unicodedata.normalize("NFKC", text).strip().lstrip("¥$").strip()
    if number[:1] in ("+", "-"):
        raise ValueError(_bad_amount(text))
    try:
        value = money.parse_amount(number)
    except money.AmountGroupingError:
        raise ValueError(money.grouping_message(text)) from None
    except ValueError:
        raise ValueError(_bad_amount(text)) from None
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(_bad_amount(text))
    if money.amount_too_large(value):
        raise ValueError(money.too_large_message(text))
    return value


def _bad_amount(text) -> str:
    return _("“%(value)s” is not an amount like 12345.67 (at most two decimals, not negative).", value=text)


def _stage_names(process: SalesProcess) -> dict[str, object]:
    """``{folded name in any language: stage}`` of a process's active stages."""
    table: dict[str, object] = {}
    for stage in stages.active_stages(process):
        table.setdefault(_fold(stage.name), stage)
        for language in ("zh_CN", "zh_TW", "en"):
            with force_locale(language):
                table.setdefault(_fold(stages.stage_label(stage.name)), stage)
    return table


class _Lookups:
    """What one chunk needs from the database, read once: processes, customers, contacts, currencies."""

    def __init__(self, outcomes, importer):
        from core.crm.models import Contact, Currency, Customer
        from core.crm.visibility import visible_to

        self.user = importer.user
        records = [o.row.record for o in outcomes]
        self.default_process = stages.default_process()
        self.processes = {}
        for process in db.session.execute(select(SalesProcess).where(SalesProcess.active.is_(True))).scalars():
            self.processes.setdefault(_fold(process.name), process)
            self.processes.setdefault(_fold(stages.stage_label(process.name)), process)
        self.stage_tables: dict[int, dict] = {}
        self.currencies = set(db.session.execute(select(Currency.code).where(Currency.active.is_(True))).scalars())
        self.company_currency = money.company_currency()
        refs = {str(r["customer_id"]).strip() for r in records if isinstance(r.get("customer_id"), str)}
        self.by_external: dict[str, set] = {}
        self.by_name: dict[str, set] = {}
        texts = list(refs)
        for start in range(0, len(texts), 1000):
            part = texts[start:start + 1000]
            keys = [normalise.search_key(t) for t in part]
            stmt = visible_to(self.user, select(Customer.id, Customer.external_id, Customer.search_name).where(
                Customer.external_id.in_(part) | Customer.search_name.in_(keys)), Customer)
            for cid, external_id, search_name in db.session.execute(stmt).all():
                if external_id:
                    self.by_external.setdefault(external_id, set()).add(cid)
                self.by_name.setdefault(search_name, set()).add(cid)
        self.contacts: dict[tuple[int, str], set] = {}
        if any(r.get("contact_id") for r in records) and (self.by_external or self.by_name):
            customer_ids = {c for ids in (*self.by_external.values(), *self.by_name.values()) for c in ids}
            ids = list(customer_ids)
            for start in range(0, len(ids), 1000):
                for contact_id, customer_id, name in db.session.execute(select(
                        Contact.id, Contact.customer_id, Contact.name).where(
                        Contact.customer_id.in_(ids[start:start + 1000]))).all():
                    self.contacts.setdefault((customer_id, _fold(name)), set()).add(contact_id)
        self.existing = self._existing(outcomes, importer)
        self.teams: dict[int, int | None] = {}
        self.rates: dict[str, Decimal] = {}

    @staticmethod
    def _existing(outcomes, importer) -> dict:
        """Update and "create or update": the records the rows' keys name (to check a row as the record will be)."""
        if importer.key is None:
            return {}
        column_name, convert = importer.key
        values = set()
        for o in outcomes:
            raw = o.row.record.get(importer.key_field)
            if raw not in (None, "") and (column_name != "id" or isinstance(raw, int)):
                values.add(convert(raw))
        from core.crm.visibility import visible_to

        found: dict = {}
        column = Opportunity.__table__.c[column_name]
        values = list(values)
        for start in range(0, len(values), 1000):  # the importer's to change (else the row fails on the key)
            stmt = visible_to(importer.user, select(Opportunity).where(column.in_(values[start:start + 1000])),
                              Opportunity, access="write")
            for record in db.session.execute(stmt).unique().scalars():
                found.setdefault(getattr(record, column_name), []).append(record)
        return {value: records[0] for value, records in found.items() if len(records) == 1}

    def stage_table(self, process: SalesProcess) -> dict:
        table = self.stage_tables.get(process.id)
        if table is None:
            table = self.stage_tables[process.id] = _stage_names(process)
        return table

    def in_company_currency(self, amount: Decimal, currency: str) -> Decimal:
        """What :func:`core.crm.money.convert` gives at today's rate, the rate read once per chunk and currency."""
        if currency not in self.rates:
            self.rates[currency] = money.rate_on(currency, date.today())  # MoneyError: no rate
        return money.quantize(Decimal(amount) * self.rates[currency], self.company_currency)

    def team_of(self, user_id: int) -> int | None:
        if user_id not in self.teams:
            self.teams[user_id] = db.session.scalar(select(User.department_id).where(User.id == user_id))
        return self.teams[user_id]


def resolve(outcomes, importer) -> None:
    """The rows' references, amounts, stage and derived columns (see the module's documentation)."""
    if not outcomes:
        return
    lookups = _Lookups(outcomes, importer)
    for o in outcomes:
        errors = _resolve_row(o, importer, lookups)
        if errors:
            o.action, o.reason = "fail", " ".join(errors)


def _resolve_row(o, importer, lookups: _Lookups) -> list[str]:  # noqa: C901 - one check per field, in order
    record, errors = o.row.record, []
    existing = None
    if importer.key is not None:
        raw = record.get(importer.key_field)
        if importer.key_field == "id" and raw not in (None, "") and not isinstance(raw, int):
            return [_("“%(value)s” is not an opportunity id.", value=raw)]
        if raw not in (None, ""):
            existing = lookups.existing.get(importer.key[1](raw))
    elif "id" in record:
        record.pop("id")  # "create": new opportunities get new ids
    # money
    for name in MONEY_FIELDS:
        if isinstance(record.get(name), str):
            try:
                record[name] = _money(record[name])
            except ValueError as exc:
                errors.append(str(exc))
    if "currency" in record:
        code = unicodedata.normalize("NFKC", record["currency"]).strip().upper()
        if code not in lookups.currencies:
            errors.append(_("Unknown currency “%(code)s”.", code=record["currency"]))
        record["currency"] = code
    if "budget_known" in record:
        record["budget_known"] = record["budget_known"] == "1"
    elif record.get("budget") is not None:
        record["budget_known"] = True
    # customer and decision maker
    from core.crm.export_views import is_hidden_placeholder

    customer_id = None
    for column in ("customer_id", "contact_id"):
        # the user's own export names a customer or decision maker hidden from them "(not visible to you)": an
        # update keeps the opportunity's (as without the cell), a new opportunity cannot have it
        if isinstance(record.get(column), str) and is_hidden_placeholder(record[column]):
            record.pop(column)
            if existing is None and column == "customer_id":
                errors.append(_("The customer of this row is hidden from you: a new opportunity needs a customer "
                                "you can see."))
    if isinstance(record.get("customer_id"), str):
        ref = record["customer_id"].strip()
        ids = lookups.by_external.get(ref) or lookups.by_name.get(normalise.search_key(ref), set())
        if len(ids) == 1:
            customer_id = record["customer_id"] = next(iter(ids))
        elif not ids:
            errors.append(_("No customer you can see is called “%(name)s”.", name=ref))
        else:
            errors.append(_("Several customers are called “%(name)s”: use the external id.", name=ref))
    elif existing is not None:
        customer_id = existing.customer_id
    if isinstance(record.get("contact_id"), str):
        name = record["contact_id"]
        ids = lookups.contacts.get((customer_id, _fold(name)), set()) if customer_id else set()
        if len(ids) == 1:
            record["contact_id"] = next(iter(ids))
        elif customer_id is not None:
            record.pop("contact_id")
            errors.append(_("The customer has no contact called “%(name)s”.", name=name) if not ids else
                          _("The customer has several contacts called “%(name)s”.", name=name))
        else:
            record.pop("contact_id")
    # process and stage
    process = existing.process if existing is not None else lookups.default_process
    if "process_id" in record:
        process = lookups.processes.get(_fold(record["process_id"]))
        if process is None:
            errors.append(_("There is no active sales process called “%(name)s”.", name=record["process_id"]))
            record.pop("process_id")
        elif existing is not None and process.id != existing.process_id:
            errors.append(_("An import does not move an opportunity to another sales process."))
        else:
            record["process_id"] = process.id
    stage = None
    if process is not None and "stage_id" in record:
        stage = lookups.stage_table(process).get(_fold(record["stage_id"]))
        if stage is None:
            errors.append(_("The sales process “%(process)s” has no stage called “%(stage)s”.",
                            process=stages.stage_label(process.name), stage=record["stage_id"]))
            record.pop("stage_id")
        elif existing is not None and stage.id != existing.stage_id:
            errors.append(_("An import does not move an opportunity to another stage: move it from its page or "
                            "the board."))
        else:
            record["stage_id"] = stage.id
    elif existing is not None:
        stage = existing.stage
    elif process is not None:
        try:
            stage = stages.first_stage(process)
        except stages.StageError as exc:
            errors.append(str(exc))
    if errors:
        return errors
    # a new opportunity's other columns, as create_opportunity sets them
    if existing is None:
        record["process_id"], record["stage_id"] = stage.process_id, stage.id
        record["status"], record["probability"] = stage.kind, stage.probability
        record.setdefault("currency", lookups.company_currency)
        record.setdefault("amount", Decimal("0"))
        record.setdefault("close_date", default_close_date())
        record.setdefault("search_name", normalise.search_key(record.get("name") or ""))
        record["owner_id"] = record.get("owner_id") or importer.user_id
        record["created_by_id"] = importer.user_id
        # the import's own time: the writer's created_at too, so that a closed one's cycle is exact
        now = importer.now
        record["stage_entered_at"] = now
        if stage.kind != "open":
            # closed as a move closes it (stages.move): the close date is the closing day; and the sales cycle
            # the ORM event would compute (the bulk insert bypasses it), creation → closing
            record["closed_at"] = now
            record["close_date"] = now.date()
            record["created_at"] = now
            record["cycle_seconds"] = 0
        for column in ("description", "pain_points", "goals", "lost_note"):
            record.setdefault(column, "")
    # a new opportunity enters its stage: the stage's required fields, as a move checks them; an update keeps
    # its stage and must not empty what that stage requires (as the form's edit)
    if existing is not None and stage is not None:
        try:
            stages.check_kept(stages.snapshot(existing), stages.snapshot(existing, **record), stage)
        except stages.StageError as exc:
            return [str(exc)]
    if existing is None:
        probe = SimpleNamespace(**{**{name: None for name in ("amount", "budget", "contact_id", "purchase_date",
                                                              "close_date")},
                                   **record, "products": (), "competitors": ()})
        probe.budget_known = bool(record.get("budget_known"))
        missing = [f for f in stages.missing_fields(probe, stage) if f.code not in ("products", "competitors")]
        if missing:
            return [_("The stage “%(stage)s” requires: %(fields)s.", stage=stages.stage_label(stage.name),
                      fields=_(", ").join(str(f.label) for f in missing))]
        if stage.kind in ("lost", "abandoned") and not record.get("lost_reason"):
            return [_("Give the reason why the opportunity is %(kind)s.",
                      kind=str(stages.KIND_LABELS[stage.kind]).lower())]
    # derived columns
    if "amount" in record or "currency" in record:
        amount = record.get("amount", existing.amount if existing is not None else Decimal("0"))
        currency = record.get("currency", existing.currency if existing is not None else lookups.company_currency)
        try:
            record["amount_company"] = lookups.in_company_currency(amount, currency)
        except money.MoneyError as exc:
            return [str(exc)]
        if money.amount_too_large(record["amount_company"]):
            return [company_too_large(record["amount_company"])]
    if existing is None or "owner_id" in record:
        record["team_id"] = lookups.team_of(record.get("owner_id") or existing.owner_id)
    return []


def company_too_large(amount: Decimal) -> str:
    """Why an amount is refused whose value in the company currency (what the funnel sums) is beyond what every
    database keeps exactly."""
    return _("In the company currency the amount is %(amount)s: at most %(max)s.", amount=f"{amount:,.2f}",
             max=money.MAX_AMOUNT_TEXT)


def after_write(created, _updated, importer) -> None:
    """The first stage-history row of each created opportunity (who imported it, when)."""
    if not created:
        return
    rows = [{"opportunity_id": o.target_id, "from_stage_id": None, "to_stage_id": o.row.record["stage_id"],
             "changed_at": o.row.record["stage_entered_at"], "changed_by_id": importer.user_id,
             "seconds_in_previous": None, "reason": None, "note": ""} for o in created]
    db.session.execute(insert(StageChange.__table__), rows)


def import_object(write_permission: str) -> ImportObject:
    return ImportObject(
        name="opportunity", model=Opportunity, label=_l("Opportunities"), fields=fields,
        permission=write_permission, list_endpoint="crm_sales.index", prepare=prepare, derived=DERIVED,
        keys={"id": ("id", _to_id), "name": ("search_name", normalise.search_key)},
        resolve=resolve, after_write=after_write, companions=COMPANIONS,
        # the same file imported again: an opportunity of the same customer and name is there already (not the
        # close date: without its column the row's is a default that changes from day to day)
        same_record=(("customer_id", "search_name"), ()),
        help=_l("One row per opportunity: name, customer (its name or external id), amount, currency, close date, "
                "stage… A stage's required fields must be in the row, as when moving to it; without a stage the "
                "opportunity starts at the first stage of its sales process. Update by the id of an export or by "
                "the name; an update does not change the stage."),
    )
