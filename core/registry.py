"""The small value objects that hooks return (menu items, permissions, jobs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MenuItem:
    """An entry of the main menu or of the administration menu.

    :param label: lazily translated text.
    :param endpoint: Flask endpoint the entry links to (``"crm_lead.index"``).
    :param permission: a permission name the user needs to see the entry, or ``None``.
    :param order: position; lower comes first.
    :param icon: name of an icon in the core icon set (optional).
    """

    label: Any
    endpoint: str
    permission: str | None = None
    order: int = 100
    icon: str = ""


@dataclass(frozen=True)
class Permission:
    """A permission an admin can grant to a role.

    :param name: namespaced by the addon, ``"<addon>.<object>.<action>"``.
    :param label: lazily translated description.
    :param addon: the addon that defines it (``"core"`` for the core's own).
    """

    name: str
    label: Any
    addon: str = "core"


@dataclass(frozen=True)
class Job:
    """A scheduled job.

    :param id: namespaced by the addon, ``"<addon>:<job>"``.
    :param func: ``"module:function"``; imported when the job runs, called with no arguments inside an
        application context.
    :param trigger: an APScheduler trigger name: ``"interval"``, ``"cron"`` or ``"date"``.
    :param trigger_args: the trigger's arguments, e.g. ``{"minutes": 5}`` or ``{"hour": 2}``.
    :param title: lazily translated text for the admin's job page.
    """

    id: str
    func: str
    trigger: str = "interval"
    trigger_args: dict = field(default_factory=dict)
    title: Any = ""

    def __hash__(self) -> int:  # trigger_args is a dict
        return hash((self.id, self.func, self.trigger, tuple(sorted(self.trigger_args.items()))))


@dataclass(frozen=True)
class CustomerPanel:
    """A panel of the 360° customer view.

    :param key: unique, namespaced by the addon (``"crm_sales.opportunities"``).
    :param title: lazily translated heading.
    :param render: ``render(customer, user) -> Markup``: the panel's HTML.
    :param order: position; lower comes first.
    :param permission: a permission the user needs to see the panel, or ``None``.
    """

    key: str
    title: Any
    render: Any
    order: int = 100
    permission: str | None = None


@dataclass(frozen=True)
class DashboardWidget:
    """A widget of the home page (the dashboard).

    :param key: unique, namespaced by the addon (``"crm_lead.by_source"``).
    :param title: lazily translated heading.
    :param render: ``render(user) -> Markup``: the widget's body.
    :param permission: the permission a user needs to see it, or ``None``.
    :param order: position; lower comes first.
    :param wide: spans two columns of the dashboard's grid (charts).
    :param cache_seconds: keep a user's rendered widget this long (per process) — for aggregates over many
        records, which then cost one query every few minutes instead of one per visit to the home page.
    """

    key: str
    title: Any
    render: Any
    permission: str | None = None
    order: int = 100
    wide: bool = False
    cache_seconds: int = 0


@dataclass(frozen=True)
class SearchHit:
    """One result of the global search."""

    title: str
    url: str
    kind: Any = ""
    subtitle: str = ""


@dataclass(frozen=True)
class SearchProvider:
    """A search of the global search box: ``search(user, query, limit) -> list[SearchHit]``."""

    key: str
    label: Any
    search: Any
    order: int = 100


@dataclass(frozen=True)
class Picklist:
    """An admin-editable list of values (industry, region...).

    :param name: namespaced for addons (``"crm_lead.source"``); the core's are plain (``"industry"``).
    :param label: lazily translated name of the list.
    :param defaults: ``[(code, {"zh_CN": ..., "en": ..., "zh_TW": ...}), ...]`` created once.
    """

    name: str
    label: Any
    defaults: tuple = ()


@dataclass(frozen=True, eq=False)
class ApiResource:
    """A REST resource served at ``/api/v1/<name>`` (list, fetch, create, update, delete, search).

    Most of a field's description is read from the model's column (type, length, nullability, uniqueness);
    the dictionaries below add what a column cannot say. An addon registers its leads in a few lines::

        ApiResource(
            name="crm_lead.leads", model=Lead, label=_l("Leads"),
            fields=("id", "name", "phone", "source", "owner_id", "created_at"),
            writable=("name", "phone", "source", "owner_id"),
            permission_read="crm_lead.lead.read", permission_write="crm_lead.lead.write",
            permission_delete="crm_lead.lead.delete",
            picklists={"source": "crm_lead.source"}, filters=("source", "owner_id"), search=("search_name",),
            before_save=lambda lead: setattr(lead, "search_name", search_key(lead.name)),
        )

    :param name: the URL segment, namespaced by the addon (``crm_lead.leads``); the core's are plain.
    :param model: the SQLAlchemy model; records with an owner declare ``__visibility_object__`` and go
        through :func:`core.crm.visibility.visible_to` for every read and write.
    :param fields: the attributes returned (column names of ``model``).
    :param writable: the fields a client may set on POST and PATCH.
    :param required: fields a POST must give; ``None`` means every writable non-nullable column without a
        default (``owner_id`` defaults to the token's user).
    :param permission_read: permission for list, fetch and search (``None``: any authenticated user).
    :param permission_write: permission for POST and PATCH (``None``: any authenticated user).
    :param permission_delete: permission for DELETE (``None``: any authenticated user).
    :param read_only: no POST, PATCH or DELETE (405).
    :param deletable: ``False``: no DELETE (405), e.g. records the web UI only deactivates.
    :param owned: ``True`` when records have an ``owner_id`` and visibility applies; ``False`` for shared
        data such as products (permission only).
    :param choices: ``{field: (allowed values...)}`` for fixed value lists.
    :param picklists: ``{field: picklist name}``: the value must be an active code of that picklist.
    :param references: ``{field: model}``: a foreign key the user must be able to see (visibility applies
        when the referenced model has an owner).
    :param filters: fields a list may be filtered on with ``?field=value`` (exact match).
    :param search: columns holding normalised search keys (:mod:`core.crm.normalise`) matched by prefix
        for ``?q=``; a column named ``phone_digits`` is matched against the query's digits.
    :param title_field: the field shown as a search hit's title.
    :param before_save: ``before_save(record)`` after the client's values are set, before the flush: set
        the normalised search columns here.
    :param after_save: ``after_save(record)`` after the flush, before the commit (derived data).
    :param label: lazily translated plural name (OpenAPI tag, search results).
    :param descriptions: ``{field: lazily translated description}`` for the OpenAPI document.
    :param check: ``check(record, values, user)`` after the body is validated, before a POST (``record`` is
        ``None``) or PATCH is saved: raise :class:`core.crm.api_auth.ApiError` to refuse it (e.g. a 409 of
        the duplicate rules, with ``extra={"matches": [...]}``).
    :param actions: the :class:`ApiAction` objects served at ``POST /api/v1/<name>/<id>/<action>``.
    """

    name: str
    model: Any
    fields: tuple = ()
    writable: tuple = ()
    required: tuple | None = None
    permission_read: str | None = None
    permission_write: str | None = None
    permission_delete: str | None = None
    read_only: bool = False
    deletable: bool = True
    owned: bool = True
    choices: dict = field(default_factory=dict)
    picklists: dict = field(default_factory=dict)
    references: dict = field(default_factory=dict)
    filters: tuple = ()
    search: tuple = ()
    title_field: str = "name"
    before_save: Any = None
    after_save: Any = None
    label: Any = ""
    descriptions: dict = field(default_factory=dict)
    order: int = 100
    check: Any = None
    actions: tuple = ()


@dataclass(frozen=True, eq=False)
class ApiAction:
    """An action on one record of an :class:`ApiResource`: ``POST /api/v1/<resource>/<id>/<name>``.

    The record is fetched for writing (visibility applies: 404 when hidden, 403 when read-only to the
    user), then ``run(record, body, user)`` returns ``(status, data)`` — answered as ``{"data": data}`` and
    committed — or raises :class:`core.crm.api_auth.ApiError` (the transaction is rolled back).

    :param name: the URL segment (``"convert"``).
    :param run: the function doing the work; it does not commit.
    :param summary: lazily translated, for the OpenAPI document.
    :param permission: a permission the user needs besides the resource's write permission, or ``None``.
    :param request_schema: the JSON schema of the body (OpenAPI); ``{"type": "object"}`` by default.
    :param response_schema: the JSON schema of ``data`` (OpenAPI).
    :param conflict: whether the action may answer 409 (described in the OpenAPI document).
    """

    name: str
    run: Any
    summary: Any = ""
    permission: str | None = None
    request_schema: dict = field(default_factory=lambda: {"type": "object"})
    response_schema: dict = field(default_factory=lambda: {"type": "object"})
    conflict: bool = False


@dataclass(frozen=True)
class RecordRef:
    """What the ``resolve_record`` hook answers: a record's label and the URL of its page."""

    label: str
    url: str


@dataclass(frozen=True)
class HandoverResult:
    """What one implementation of ``handover_records`` moved (or, in a dry run, would move) for one object.

    :param object: the object, namespaced by its addon (``"crm_lead.lead"``); the core's are plain
        (``"customer"``).
    :param label: lazily translated plural name (``_l("Leads")``), shown in the report.
    :param count: how many records moved (would move).
    """

    object: str
    label: Any
    count: int


@dataclass(frozen=True)
class CustomFieldObject:
    """An object whose records may carry custom fields (what ``register_custom_field_objects`` returns).

    :param name: the object, namespaced by its addon (``"crm_lead.lead"``); the core's are plain
        (``"customer"``, ``"contact"``).
    :param model: the SQLAlchemy model; it must have a ``custom`` JSON column (nullable, e.g.
        ``mapped_column(CustomJSON, nullable=True)`` from :mod:`core.crm.custom_field_models`).
    :param label: lazily translated plural name (``_l("Leads")``), shown on the custom fields page.
    :param order: position on that page; lower comes first.
    """

    name: str
    model: Any
    label: Any
    order: int = 100


@dataclass(frozen=True)
class RecycleDependents:
    """Rows that depend on records going to the recycle bin (what ``recycle_dependents`` returns).

    :param model: the model (or ``Table``) of the dependent rows; it needs an ``id`` primary key for
        ``detach=True`` and for dependents of its own.
    :param column: the name of its column holding the ids of the records being deleted
        (``"customer_id"``).
    :param detach: ``False``: the rows are deleted with the records and come back with them;
        ``True``: only the link is cut (the column set to ``NULL``) and re-established on restore.
    :param object: the dependent rows' own object name (``"contact"``), so that *their* dependents are
        asked for too; ``None`` for plain rows.
    :param only: an extra condition on the dependent rows (``Activity.related_object == "lead"``: a column
        shared by several objects' ids).
    :param refers_to: the table ``column`` refers to when it has no foreign key (``related_id``): a record
        restored under a new id (its own taken meanwhile) takes its detached rows along.
    """

    model: Any
    column: str
    detach: bool = False
    object: str | None = None
    only: Any = None
    refers_to: str | None = None


@dataclass(frozen=True)
class MergeMove:
    """Rows moved from merged-away records to the survivor (what ``merge_records`` returns).

    Made by :func:`core.crm.merge.move_rows`; undoing the merge moves each row back to its old record.

    :param table: the table's name.
    :param column: the column that now holds the survivor's id.
    :param moved: ``{str(loser id): [ids of the rows that pointed at it]}``.
    :param cleared: the same for rows whose link was cleared instead (``NULL``: they may not name the survivor,
        ``move_rows(keep=…)``; under the survivor's own id, its rows it no longer fits); the undo gives them back
        their old record too.
    """

    table: str
    column: str
    moved: dict = field(default_factory=dict)
    cleared: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(ids) for ids in self.moved.values())


@dataclass(frozen=True)
class DuplicateField:
    """A field of a :class:`DuplicateObject` that duplicate rules can compare.

    :param name: the field's name in rules and in the values given to :func:`core.crm.dedup.check`
        (``"name"``, ``"phone"``).
    :param label: lazily translated.
    :param columns: the model's indexed columns holding the normalised key (``("phone_key",)``); a value
        matches a record when its key equals the key in any of them (a contact's mobile or phone).
    :param sources: the record's attributes (and keys of the checked values) the key is made from, in
        order (``("mobile", "phone")``); empty: ``(name,)``.
    :param kind: ``"name"`` (company names: legal suffixes and region prefixes), ``"phone"`` (E.164),
        ``"email"``, ``"text"`` (width, case and spaces) or ``"raw"`` (as typed, trimmed): picks the
        normaliser of :mod:`core.crm.dedup_normalise` the stored keys were made with.
    :param fuzzy: whether rules may compare it fuzzily (names, with a threshold).
    """

    name: str
    label: Any
    columns: tuple
    sources: tuple = ()
    kind: str = "text"
    fuzzy: bool = False


@dataclass(frozen=True)
class DuplicateRuleDefault:
    """A rule created for an object the first time its rules are used.

    :param name: lazily translated; stored in the language of the moment it is created, shown in the reader's
        language as long as an admin has not renamed it (:func:`core.crm.dedup.rule_label`).
    :param action: ``"block"`` (the save is refused) or ``"warn"`` (the user confirms).
    :param conditions: ``((field, "exact"), (field, "fuzzy", threshold))``: all must hold.
    """

    name: Any
    action: str
    conditions: tuple


@dataclass(frozen=True)
class DuplicateObject:
    """An object whose records duplicate rules check (what ``register_duplicate_objects`` returns).

    :param name: the object, namespaced by its addon (``"crm_lead.lead"``); the core's are plain.
    :param model: the SQLAlchemy model. With ``__visibility_object__`` the records a user cannot see are
        named in matches but not linked.
    :param label: lazily translated plural name (``_l("Leads")``).
    :param fields: the :class:`DuplicateField` rules may use.
    :param endpoint: the endpoint of a record's page; ``id_arg`` names its id argument
        (``"crm_lead.view"``, ``"lead_id"``; ``id_arg=None``: the page takes no id).
    :param permission: the permission needed to check (usually the object's write permission).
    :param title_field: the attribute naming a record in matches.
    :param default_rules: :class:`DuplicateRuleDefault` created on first use.
    :param merge: whether ``/merge/<name>`` merges its records (the finder then links groups there).
    :param order: position on the rules page; lower comes first.
    """

    name: str
    model: Any
    label: Any
    fields: tuple
    endpoint: str
    id_arg: str | None = None
    permission: str | None = None
    title_field: str = "name"
    default_rules: tuple = ()
    merge: bool = False
    order: int = 100


@dataclass(frozen=True)
class MergeObject:
    """An addon's object whose duplicates users merge on ``/merge/<name>`` (``register_merge_objects``).

    :param name: the object (the same as its duplicate rules', custom fields' and recycle bin's name).
    :param model: the SQLAlchemy model, with ``__visibility_object__`` (only records the user may change are
        merged) and ``__recycle_object__`` equal to ``name`` (the losers go to the recycle bin).
    :param title: the page's title (``_l("Merge leads")``).
    :param fields: the attributes the user picks a value for, one row each.
    :param permissions: ``(write, delete)``: the survivor changes, the others go to the bin.
    :param list_endpoint: where the page goes back to.
    :param endpoint: the record page's endpoint, ``id_arg`` its id argument.
    :param labels: ``{field: label}`` for fields the audit trail does not name.
    :param formatters: ``formatters(user) -> {field: function(set of texts) -> {text: shown}}`` to show ids,
        codes and picklists as people read them (owners are shown by name without one).
    :param companions: ``{field: (attributes, …)}``: attributes that are not picked on their own but go with a
        field's value — taking another record's status takes its reason and date too
        (``{"status": ("disqualify_reason", "disqualified_at")}``); an undo gives them back with it.
    :param currency_amounts: ``{field: currency attribute}``: amounts held in the record's currency but picked on
        their own (an opportunity's budget beside its amount): one taken from a record of another currency than
        the one the merge leaves is converted (:func:`core.crm.merge.merge`); an undo treats it as one unit
        with that currency.
    """

    name: str
    model: Any
    title: Any
    fields: tuple
    permissions: tuple
    list_endpoint: str
    endpoint: str
    id_arg: str
    labels: dict = field(default_factory=dict)
    formatters: Any = None
    companions: dict = field(default_factory=dict)
    currency_amounts: dict = field(default_factory=dict)
