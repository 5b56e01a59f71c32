"""The list engine: filtered, sorted, keyset-paginated lists of owned records, saved views, bulk actions.

Every list of owned records (customers, contacts; an addon's leads, opportunities...) is described once
by a :class:`ListSpec` and drawn with :func:`run`, which

* starts from ``visible_to(user, select(model), model)`` — a list never shows a record its reader may not
  see;
* applies the filters of the request's query string, each one whitelisted by the spec: ``q`` (text search:
  prefix range scans on the normalised ``search_name``/``initials`` columns, on ``phone_digits`` when the
  query looks like a phone number, and on any extra key column), ``owner`` (a user id or ``me``), ``tag``,
  equality on the spec's ``filters`` and the spec's own ``conditions`` (a period, "idle for N days");
* sorts on one of the spec's ``sorts`` (``sort=name`` or ``sort=-created``), with ``id`` as tie-breaker;
* pages with **keyset (seek) pagination**: ``after=<cursor>`` / ``before=<cursor>``, a cursor being the sort
  value and id of the last (first) row shown, so a page costs one index range scan of ``page_size + 1``
  rows however deep it is. There is no OFFSET, and no query loads a whole table.

An addon's list::

    from core.crm import lists

    LEADS = lists.ListSpec(
        model=Lead,                                       # has owner_id and __visibility_object__
        sorts={"name": Lead.search_name, "created": Lead.created_at},
        default_sort="-created",
        filters={"status": Lead.status, "source": Lead.source},
        search_columns=(Lead.search_name, Lead.initials),
        phone_column=Lead.phone_digits,
        bulk_actions=(lists.assign_owner_action("crm_lead.lead.write"),
                      lists.delete_action("crm_lead.lead.delete")),
    )

    @bp.route("/")
    def index():
        page = lists.run(LEADS, current_user, request.args)   # page.rows, page.next_args()...
        views = lists.saved_views(current_user, LEADS.object)
        return render_template("crm_lead/list.html", page=page, views=views)

    @bp.route("/bulk", methods=["POST"])
    def bulk():
        changed, error = lists.bulk(LEADS, current_user, request.form)   # re-checks write access per id

The templates ``core/crm/list_macros.html`` draw the toolbar (search, filters, saved views), the pager and
the bulk bar for any spec. Saved views (``core_saved_view``) keep a list's filters and sort under a name,
private or shared: :func:`saved_views`, :func:`save_view`, :func:`delete_view`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import and_, delete, false, or_, select, union_all
from werkzeug.datastructures import MultiDict

from core.crm.models import SavedView
from core.crm.normalise import phone_digits, prefix_upper_bound, search_key
from core.crm.visibility import owner_partition, reach, visible_to
from core.extensions import db
from core.params import MAX_ID, ascii_int, fits, is_id

PAGE_SIZE = 50
#: up to this many owners, a list is paged owner by owner (see _merged_page); beyond, one plain query
MERGE_OWNERS_MAX = 64
BULK_LIMIT = 500
CURSOR_KEYS = ("after", "before")
_PHONE_LIKE = re.compile(r"^[\d\s+()\-.]+$")


@dataclass(frozen=True)
class BulkAction:
    """An action on the selected rows: ``apply(records, form) -> (changed, error)``.

    ``records`` are already restricted to those the user may change (``visible_to(access="write")``).
    """

    key: str
    label: Any
    permission: str | None
    apply: Callable
    #: ``redirect(ids) -> url``: the action is a page of its own (merge), opened with the selected ids
    redirect: Callable | None = None
    #: ``apply(records, form, user)``: the action depends on who runs it (whom "Assign owner" may give to)
    with_user: bool = False


@dataclass(frozen=True)
class ListSpec:
    """How one object's list may be filtered, sorted and searched (every key is whitelisted here)."""

    model: Any
    sorts: dict
    default_sort: str
    filters: dict = field(default_factory=dict)
    #: filters other than equality: ``{key: make(value, user) -> condition}`` (a period, "not contacted for
    #: N days"); ``make`` raises ``ValueError`` for a bad value (the filter is then ignored with a message)
    conditions: dict = field(default_factory=dict)
    search_columns: tuple = ()
    phone_column: Any = None
    extra_search: Callable | None = None  # q -> list of conditions
    tag_filter: Callable | None = None  # tag name -> condition
    bulk_actions: tuple = ()
    #: most records one bulk action changes when it takes every row of the list (``scope=all``)
    bulk_limit: int = BULK_LIMIT
    options: tuple = ()  # loader options for the select (selectinload...)
    page_size: int = PAGE_SIZE
    object_name: str = ""
    #: ``base(user) -> select`` replacing ``visible_to(user, select(model), model)`` for a list whose rows
    #: are not chosen by visibility (the public pool: every claimer sees every pooled customer); the view
    #: must then show only what such a reader may see
    base: Callable | None = None
    #: the object whose custom fields (core.crm.custom_fields) filter this list: ``cf.<key>=<code>``,
    #: ``cf.<key>.min`` / ``cf.<key>.max`` on picklist, checkbox, number, money and date fields
    custom_object: str = ""
    #: the tie-breaking column of the order (default ``model.id``): a list ordered by a joined table's
    #: column pages through that table's index only if the tie-breaker is that table's key as well
    #: (the public pool: ``(pooled_at, customer_id)``)
    id_column: Any = None

    @property
    def object(self) -> str:
        return self.object_name or self.model.__visibility_object__

    @property
    def param_keys(self) -> tuple[str, ...]:
        keys = ["q", "owner", "sort", *self.filters, *self.conditions]
        if self.tag_filter is not None:
            keys.append("tag")
        if self.custom_object:
            from core.crm.custom_fields import filter_keys

            keys += filter_keys(self.custom_object)
        return tuple(keys)


class ParamMessage:
    """A list's message about a parameter it dropped: ``str()`` is what the list page says (it shows the list
    without that parameter), ``reason`` the bare reason — what an export says, which refuses instead of making a
    wider file (:func:`reason_of`). Both lazily translated."""

    def __init__(self, shown, reason):
        self.shown, self.reason = shown, reason

    def __str__(self) -> str:
        return str(self.shown)


def reason_of(message) -> str:
    """The bare reason of a list's message (:class:`ParamMessage`), or the message itself."""
    return str(getattr(message, "reason", message))


def invalid_filter(name) -> ParamMessage:
    """The message of a filter whose value is not valid (``name``: its key, or a custom field's label)."""
    return ParamMessage(_l("The filter “%(name)s” was ignored: its value is not valid.", name=name),
                        _l("The value of the filter “%(name)s” is not valid.", name=name))


@dataclass
class ListPage:
    rows: list
    params: dict  # the normalised filters and sort (what a saved view keeps)
    sort: str
    has_next: bool = False
    has_prev: bool = False
    next_cursor: str | None = None
    prev_cursor: str | None = None
    errors: list = field(default_factory=list)

    def next_args(self) -> dict:
        return {**self.params, "after": self.next_cursor}

    def prev_args(self) -> dict:
        return {**self.params, "before": self.prev_cursor}

    def sort_args(self, key: str) -> dict:
        """Query args to sort on ``key``: ascending first, descending when already ascending."""
        return {**self.params, "sort": f"-{key}" if self.sort == key else key}


# -- cursors ------------------------------------------------------------------------------------------
def encode_cursor(value, row_id: int) -> str:
    if value is None:
        tagged = ["n", None]
    elif isinstance(value, bool):
        tagged = ["b", value]
    elif isinstance(value, datetime):
        tagged = ["dt", value.isoformat()]
    elif isinstance(value, date):
        tagged = ["d", value.isoformat()]
    elif isinstance(value, Decimal):
        tagged = ["dec", str(value)]
    elif isinstance(value, int):
        tagged = ["i", value]
    else:
        tagged = ["s", str(value)]
    raw = json.dumps([*tagged, int(row_id)], ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str):
    """``(value, id)`` of a cursor; ``ValueError`` for anything that is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tag, value, row_id = json.loads(raw.decode())
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError("bad cursor") from exc
    if not isinstance(row_id, int) or isinstance(row_id, bool) or abs(row_id) > MAX_ID:
        raise ValueError("bad cursor")  # (an id beyond the database's integer: no id column holds it)
    converters = {
        "n": lambda v: None,
        "b": bool,
        "dt": datetime.fromisoformat,
        "d": date.fromisoformat,
        "dec": Decimal,
        "i": int,
        "s": str,
    }
    if tag not in converters or (tag != "n" and value is None):
        raise ValueError("bad cursor")
    try:
        return converters[tag](value), row_id
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise ValueError("bad cursor") from exc


def _nullable(column) -> bool:
    """Whether a sort column may be NULL (a ``column_property`` expression says so in ``info["nullable"]``)."""
    try:
        if "nullable" in column.property.info:
            return bool(column.property.info["nullable"])
        return bool(column.property.columns[0].nullable)
    except (AttributeError, IndexError):
        return True


def _order(column, id_column, ascending: bool, nullable: bool = True) -> tuple:
    """Ascending puts NULLs first, descending last: one the exact reverse of the other on both DBs.

    A NOT NULL column gets a plain ``ASC``/``DESC``, so that its index gives the order without a sort.
    """
    if not nullable:
        return (column.asc(), id_column.asc()) if ascending else (column.desc(), id_column.desc())
    if ascending:
        return (column.asc().nulls_first(), id_column.asc())
    return (column.desc().nulls_last(), id_column.desc())


def _seek(column, id_column, value, row_id: int, ascending: bool, nullable: bool):
    """Rows strictly after ``(value, row_id)`` in the order :func:`_order` gives."""
    if ascending:
        if value is None:
            return or_(and_(column.is_(None), id_column > row_id), column.is_not(None))
        # "column >= value AND (...)": an index range scan in order, where a bare OR would lose the order
        return and_(column >= value, or_(column > value, id_column > row_id))
    if value is None:
        return and_(column.is_(None), id_column < row_id)
    if not nullable:
        return and_(column <= value, or_(column < value, id_column < row_id))
    return or_(column < value, and_(column == value, id_column < row_id), column.is_(None))


# -- filters ------------------------------------------------------------------------------------------
def text_conditions(q: str, columns=(), phone_column=None) -> list:
    """Prefix conditions for a search text: on the normalised name keys, and on phone digits when the
    text looks like a phone number (``"+86 138-0013-8000"``)."""
    conditions = []
    key = search_key(q)
    if key:
        conditions += [and_(col >= key, col < prefix_upper_bound(key)) for col in columns]
    digits = phone_digits(q)
    if phone_column is not None and digits and _PHONE_LIKE.match(q.strip()):
        conditions.append(and_(phone_column >= digits, phone_column < prefix_upper_bound(digits)))
    return conditions


def _coerce(column, value: str):
    python_type = column_type = None
    try:
        column_type = column.property.columns[0].type
        python_type = column_type.python_type
    except (AttributeError, IndexError, NotImplementedError):
        pass
    if python_type is int:
        number = int(value)
        if not fits(number, column_type):
            raise ValueError(value)  # more than the column holds (PostgreSQL: a query that fails)
        return number
    return value


def normalise_params(spec: ListSpec, args) -> tuple[dict, list]:
    """The spec's known, non-empty parameters of ``args``, and translated messages for bad ones."""
    params, errors = {}, []
    for key in spec.param_keys:
        value = (args.get(key) or "").strip()
        if value:
            params[key] = value[:200]
    sort = params.get("sort")
    if sort and sort.lstrip("-") not in spec.sorts:
        errors.append(ParamMessage(
            _l("Unknown sort order “%(sort)s”; the list is shown in its usual order.", sort=sort),
            _l("Unknown sort order “%(sort)s”.", sort=sort)))
        params.pop("sort")
    owner = params.get("owner")
    if owner and owner != "me" and ascii_int(owner) is None:
        errors.append(ParamMessage(_l("The owner filter must be a user; it was ignored."),
                                   _l("The owner filter must be a user.")))
        params.pop("owner")
    return params, errors


def _gone_filters(spec: ListSpec, keys) -> list[tuple[str, bool]]:
    """``(name, is_label)`` of the filters ``keys`` the list no longer has, each once: a custom field's
    (``cf.<key>``, ``cf.<key>.min``...) deactivated or deleted since by its label — a reader knows the field so,
    not by its key —, any other by its key."""
    from core.crm.custom_fields import definition

    names: list[tuple[str, bool]] = []
    for key in keys:
        field_key = key[3:].removesuffix(".min").removesuffix(".max") if key.startswith("cf.") else ""
        d = definition(spec.custom_object, field_key, active_only=False) \
            if spec.custom_object and field_key else None
        name = (d.label, True) if d is not None else (key, False)
        if name not in names:
            names.append(name)
    return names


def _dropped_custom_filters(spec: ListSpec, args) -> list:
    """Messages of the custom-field filters among ``args`` the list drops since it no longer has them (a
    bookmarked ``?cf.grade=a`` of a field deactivated since): the list is not what the link asked for, and says so."""
    gone = [key for key in unknown_params(spec, args, CURSOR_KEYS)
            if key.startswith("cf.") and str(args.get(key) or "").strip()]
    return [_l("The filter on “%(name)s” was ignored: that field is no longer in use.", name=name) if is_label
            else _l("The filter “%(name)s” was ignored: this list has no such filter.", name=name)
            for name, is_label in _gone_filters(spec, gone)]


def unknown_params(spec: ListSpec, args, allowed=()) -> list[str]:
    """The keys of ``args`` that are none of ``spec``'s parameters (nor in ``allowed``), in their order.

    :func:`normalise_params` drops them, which suits a list page; an action or an export over "the list" must
    refuse them instead, since dropping a filter (a misspelt key, a custom field deactivated since the page
    was drawn) widens what it takes."""
    known = {*spec.param_keys, *allowed}
    return [key for key in args if key not in known]


def filtered_select(spec: ListSpec, user, params: dict, errors: list):
    """``visible_to`` + the filters of ``params`` (no order, no limit)."""
    model = spec.model
    stmt = spec.base(user) if spec.base is not None else visible_to(user, select(model), model)
    q = params.get("q")
    if q:
        conditions = text_conditions(q, spec.search_columns, spec.phone_column)
        if spec.extra_search is not None:
            conditions += spec.extra_search(q)
        stmt = stmt.where(or_(*conditions) if conditions else false())
    owner = params.get("owner")
    if owner:
        stmt = stmt.where(model.owner_id == (user.id if owner == "me" else int(owner)))
    if params.get("tag") and spec.tag_filter is not None:
        stmt = stmt.where(spec.tag_filter(params["tag"]))
    for key, column in spec.filters.items():
        if key in params:
            try:
                stmt = stmt.where(column == _coerce(column, params[key]))
            except ValueError:
                errors.append(invalid_filter(key))
                params.pop(key)
    for key, make in spec.conditions.items():
        if key in params:
            try:
                stmt = stmt.where(make(params[key], user))
            except ValueError:
                errors.append(invalid_filter(key))
                params.pop(key)
    if spec.custom_object:
        from core.crm.custom_fields import filter_conditions

        conditions = filter_conditions(model, spec.custom_object, params, errors)
        if conditions:
            stmt = stmt.where(and_(*conditions))
    return stmt


def _merged_page(spec: ListSpec, stmt, owners, order) -> list:
    """One page of a list that several owners' records make up (a manager's team): each owner's first
    ``page_size + 1`` rows come from one ordered range scan of the ``(owner_id, sort column, id)`` index,
    the union is ordered again and cut, and the page's rows are loaded by id. The cost is bounded by
    the page size times the number of owners, never by the size of the team's (or the table's) data."""
    model, limit = spec.model, spec.page_size + 1
    key_columns = [_base(c) for c in order]
    parts = []
    for owner_id in owners:
        part = (
            stmt.where(model.owner_id == owner_id)
            .with_only_columns(*key_columns)
            .order_by(*order)
            .limit(limit)
            .subquery()
        )
        parts.append(select(*part.c))
    merged = union_all(*parts).subquery()
    outer_order = [_reorder_like(c, merged.c[_base(c).key]) for c in order]
    ids = [row[-1] for row in db.session.execute(select(*merged.c).order_by(*outer_order).limit(limit))]
    if not ids:
        return []
    load = select(model).where(model.id.in_(ids))
    if spec.options:
        load = load.options(*spec.options)
    by_id = {row.id: row for row in db.session.execute(load).unique().scalars()}
    return [by_id[i] for i in ids if i in by_id]


def _base(clause):
    """The column under an ORDER BY element (``col.desc().nulls_last()`` -> ``col``)."""
    while getattr(clause, "modifier", None) is not None:
        clause = clause.element
    return clause


def _reorder_like(clause, column):
    """Apply ``clause``'s direction and NULLS placement (an ORDER BY element) to ``column``."""
    modifiers = []
    node = clause
    while hasattr(node, "modifier") and node.modifier is not None:
        modifiers.append(node.modifier)
        node = node.element
    result = column
    for modifier in reversed(modifiers):
        result = modifier(result)
    return result


def run(spec: ListSpec, user, args: MultiDict | dict) -> ListPage:
    """One page of ``spec``'s list for ``user`` as the query string ``args`` asks."""
    params, errors = normalise_params(spec, args)
    errors += _dropped_custom_filters(spec, args)
    sort = params.get("sort") or spec.default_sort
    ascending = not sort.startswith("-")
    column = spec.sorts[sort.lstrip("-")]
    id_column = spec.id_column if spec.id_column is not None else spec.model.id
    stmt = filtered_select(spec, user, params, errors)

    cursor, backwards = None, False
    for key in CURSOR_KEYS:
        raw = args.get(key)
        if raw:
            try:
                cursor = decode_cursor(raw)
                if isinstance(cursor[0], int) and not isinstance(cursor[0], bool):
                    _coerce(column, str(cursor[0]))  # a number the sort column holds (ValueError if not)
                backwards = key == "before"
            except ValueError:
                cursor = None
                errors.append(_l("The page link was not valid; the first page is shown."))
            break
    direction = ascending != backwards
    nullable = _nullable(column)
    if cursor is not None:
        stmt = stmt.where(_seek(column, id_column, cursor[0], cursor[1], direction, nullable))
    order = _order(column, id_column, direction, nullable)
    owners = owner_partition(user, spec.model) if spec.base is None else None
    if owners is not None and 1 < len(owners) <= MERGE_OWNERS_MAX and "owner" not in params:
        rows = _merged_page(spec, stmt, owners, order)
    else:
        stmt = stmt.order_by(*order).limit(spec.page_size + 1)
        if spec.options:
            stmt = stmt.options(*spec.options)
        rows = list(db.session.execute(stmt).unique().scalars())
    more = len(rows) > spec.page_size
    rows = rows[: spec.page_size]
    if backwards:
        rows.reverse()
    page = ListPage(rows=rows, params=params, sort=sort, errors=errors)
    page.has_next = (not backwards and more) or (backwards and cursor is not None)
    page.has_prev = (backwards and more) or (not backwards and cursor is not None)
    attr = column.key
    if rows:
        page.next_cursor = encode_cursor(getattr(rows[-1], attr), rows[-1].id)
        page.prev_cursor = encode_cursor(getattr(rows[0], attr), rows[0].id)
    else:
        page.has_next = page.has_prev = False
    return page


# -- saved views --------------------------------------------------------------------------------------
def saved_views(user, object_name: str) -> list[SavedView]:
    """The user's own views of ``object_name`` and those others shared."""
    stmt = (
        select(SavedView)
        .where(SavedView.object == object_name, or_(SavedView.user_id == user.id, SavedView.shared.is_(True)))
        .order_by(SavedView.name, SavedView.id)
        .limit(200)
    )
    return list(db.session.execute(stmt).scalars())


def view_refusal(spec: ListSpec, view: SavedView) -> str | None:
    """Why a saved view cannot be opened: it filters on a parameter the list no longer has (a custom field
    deactivated since) — dropping that filter would show, export and act on a wider list than the view's."""
    gone = unknown_params(spec, view.params or {})
    if not gone:
        return None
    from core.i18n import list_separator

    # each name quoted as the language quotes (“…” / 「…」)
    names = [_("“%(name)s”", name=name) for name, _is_label in _gone_filters(spec, gone)]
    return ngettext("The saved view “%(name)s” filters on the field %(fields)s, which no longer exists: it was not "
                    "opened. Ask an administrator to activate the field again, or save the view anew.",
                    "The saved view “%(name)s” filters on the fields %(fields)s, which no longer exist: it was not "
                    "opened. Ask an administrator to activate the fields again, or save the view anew.",
                    len(names), name=view.name, fields=list_separator().join(names))


def get_view(user, object_name: str, view_id) -> SavedView | None:
    view_id = ascii_int(view_id)
    if view_id is None:
        return None
    view = db.session.get(SavedView, view_id)
    if view is None or view.object != object_name or (view.user_id != user.id and not view.shared):
        return None
    return view


def save_view(spec: ListSpec, user, name: str, args, shared: bool) -> tuple[SavedView | None, str | None]:
    """Save the filters and sort of ``args`` as a view; ``(view, None)`` or ``(None, message)``."""
    name = (name or "").strip()
    if not name:
        return None, _l("Give the view a name.")
    if len(name) > 128:
        return None, _l("A view's name has at most 128 characters.")
    params, _errors = normalise_params(spec, args)
    view = SavedView(user_id=user.id, object=spec.object, name=name, params=params, shared=bool(shared))
    db.session.add(view)
    db.session.flush()
    return view, None


def delete_view(user, object_name: str, view_id) -> bool:
    """Delete one of the user's own views (another's shared view is not theirs to delete)."""
    view = get_view(user, object_name, view_id)
    if view is None or view.user_id != user.id:
        return False
    db.session.execute(delete(SavedView).where(SavedView.id == view.id))
    return True


# -- bulk actions -------------------------------------------------------------------------------------
def parse_ids(values) -> list[int]:
    """The ids among ``values`` (what is no id — nor one an id column can hold — is dropped)."""
    ids = {n for value in values if (n := ascii_int(value)) is not None}
    return sorted(ids)[:BULK_LIMIT]


def writable(spec: ListSpec, user, ids) -> list:
    """The records among ``ids`` that ``user`` may change; forged ids of hidden records are dropped."""
    ids = parse_ids(ids)
    if not ids:
        return []
    model = spec.model
    stmt = visible_to(user, select(model).where(model.id.in_(ids)), model, access="write").order_by(model.id)
    return list(db.session.execute(stmt).unique().scalars())


def every_writable(spec: ListSpec, user, form) -> tuple[list, Any]:
    """Every record of the list that ``user`` may change, on all its pages: the list's filters come as
    ``f.<key>`` fields (the bulk bar sends the page's filters so). ``([], message)`` when a filter is not valid
    — an unknown key (misspelt, or a custom field deactivated since the page was drawn), a bad value, one key
    sent with two values — since ignoring it would widen the list, or when more than ``spec.bulk_limit``
    records would change."""
    items = form.items(multi=True) if hasattr(form, "getlist") else form.items()
    sent: dict = {}
    for key, value in items:
        if not key.startswith("f."):
            continue
        key = key[2:]
        if key in sent and sent[key] != value:
            return [], _refused_filter(key)
        sent[key] = value
    unknown = unknown_params(spec, sent)
    if unknown:
        return [], _refused_filter(unknown[0])
    params, errors = normalise_params(spec, sent)
    params.pop("sort", None)
    stmt = filtered_select(spec, user, params, errors)
    if errors:
        return [], errors[0]
    # a filter sent with a value must still be there: anything dropped on the way would widen the list
    dropped = [key for key, value in sent.items()
               if key != "sort" and isinstance(value, str) and value.strip() and key not in params]
    if dropped:
        return [], _refused_filter(dropped[0])
    model = spec.model
    listed = stmt.with_only_columns(model.id).order_by(None)
    records = list(db.session.execute(
        visible_to(user, select(model).where(model.id.in_(listed)), model, access="write")
        .order_by(model.id).limit(spec.bulk_limit + 1)).unique().scalars())
    if len(records) > spec.bulk_limit:
        return [], _l("You may change more than %(max)d rows of this list: narrow it with its filters (at most "
                      "%(max)d rows at once).", max=spec.bulk_limit)
    return records, None


def _refused_filter(key: str):
    return _l("Nothing was changed: the filter “%(name)s” is not valid for this list.", name=key)


def bulk(spec: ListSpec, user, form) -> tuple[int, Any]:
    """Run the bulk action ``form["action"]`` on ``form.getlist("ids")`` — or, with ``form["scope"] == "all"``, on
    every row of the filtered list (:func:`every_writable`): ``(changed, error message)``."""
    action = next((a for a in spec.bulk_actions if a.key == form.get("action")), None)
    if action is None:
        return 0, _l("Pick an action for the selected rows.")
    if not user.can(action.permission):
        return 0, _l("You do not have permission for this action.")
    if form.get("scope") == "all":
        records, error = every_writable(spec, user, form)
        if error:
            return 0, error
    else:
        ids = form.getlist("ids") if hasattr(form, "getlist") else form.get("ids", [])
        if not parse_ids(ids):
            return 0, _l("Select at least one row.")
        records = writable(spec, user, ids)
    if not records:
        return 0, None
    return action.apply(records, form, user) if action.with_user else action.apply(records, form)


# -- owners -------------------------------------------------------------------------------------------
def givable_owner_ids(user, object_name: str) -> tuple[int, ...] | None:
    """The ids of the users ``user`` may give records of ``object_name`` to — when active —: themselves and the
    users whose records they may change (their department's subtree with scope ``department``); ``None``: any
    active user (scope ``all``, administrators). The one rule of the forms' owner fields, the bulk "Assign owner",
    the API (``owner_id``) and the import (:class:`core.crm.imports_fields.Owners`)."""
    r = reach(user, object_name, "write")
    return None if r.everything else r.owner_ids


def may_give_to(user, object_name: str, owner) -> bool:
    """Whether ``user`` may give records of ``object_name`` to ``owner`` (a ``User`` or an id): an active user
    of :func:`givable_owner_ids`."""
    from core.models import User

    if not isinstance(owner, User):
        owner = db.session.get(User, owner) if is_id(owner) else None
    if owner is None or not owner.active:
        return False
    allowed = givable_owner_ids(user, object_name)
    return allowed is None or owner.id in allowed


def owner_refusal(owner) -> str:
    """Why a user may not give records to ``owner`` (translated), as the import says it."""
    return _("You cannot give records to “%(name)s”: only to yourself and the users of your team.", name=owner.label)


def assign_owner_action(permission: str) -> BulkAction:
    """Bulk action ``assign_owner``: ``form["owner"]`` is a user id (or a reference ``"name #id"``), one the user
    may give records to (:func:`may_give_to`), else nothing changes."""

    def apply(records, form, user):
        from core.models import User

        owner_id = reference_id(form.get("owner"))
        owner = db.session.get(User, owner_id) if owner_id else None
        if owner is None or not owner.active:
            return 0, _l("Pick the new owner among the active users.")
        if not may_give_to(user, type(records[0]).__visibility_object__, owner):
            return 0, owner_refusal(owner)
        changed = 0
        for record in records:
            if record.owner_id != owner.id:
                record.owner_id = owner.id
                changed += 1
        return changed, None

    return BulkAction("assign_owner", _l("Assign owner"), permission, apply, with_user=True)


def delete_action(permission: str, delete_one: Callable | None = None) -> BulkAction:
    """Bulk action ``delete``; ``delete_one(record) -> bool`` may refuse or cascade (default: each record
    goes to the recycle bin with its dependents, :func:`core.crm.recycle.trash`; refused when in use)."""

    def apply(records, form):
        from core.crm import recycle

        changed = 0
        for record in records:
            if delete_one is not None:
                changed += bool(delete_one(record))
            else:
                try:
                    recycle.trash([record])
                except recycle.RecordsInUse:
                    continue
                changed += 1
        return changed, None

    return BulkAction("delete", _l("Delete"), permission, apply)


_REF_ID = re.compile(r"#(\d+)\s*$")
_ASCII_REF = re.compile(r"^[0-9]+$|#[0-9]+\s*$")


def is_reference(text) -> bool:
    """Whether a reference field's text names a record by its id (``"42"``, ``"上海某某科技 #42"``), whether or
    not the number can be one (:func:`reference_id` is ``None`` for ``"#99999999999"``)."""
    return _ASCII_REF.search((text or "").strip()) is not None


def reference_id(text) -> int | None:
    """The id of a reference field's text: ``"42"`` or ``"上海某某科技 #42"`` (what the suggestions fill in);
    ``None`` for anything else, an id beyond the database's integer included (:func:`core.params.ascii_int`)."""
    text = (text or "").strip()
    if text.isdigit():
        return ascii_int(text)
    match = _REF_ID.search(text)
    return ascii_int(match.group(1)) if match else None
