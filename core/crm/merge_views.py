"""The merge page: ``/merge/<object>?ids=1&ids=2`` — pick the record that stays and, field by field, the
value to keep (:mod:`core.crm.merge` does the work). Reached from the lists' "Merge" bulk action and from
the duplicate finder."""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from core.crm import audit, merge, recycle
from core.crm.customers import CONTACT_DELETE, CONTACT_WRITE, CUSTOMER_DELETE, CUSTOMER_WRITE
from core.crm.visibility import visible_to
from core.extensions import db
from core.params import ascii_int

bp = Blueprint("crm_merge", __name__)

#: object -> (permissions needed: the survivor changes, the others go to the recycle bin)
PERMISSIONS = {"customer": (CUSTOMER_WRITE, CUSTOMER_DELETE), "contact": (CONTACT_WRITE, CONTACT_DELETE)}
LISTS = {"customer": "crm_customers.index", "contact": "crm_customers.contacts"}
RECORD_PAGES = {"customer": ("crm_customers.view", "customer_id"),
                "contact": ("crm_customers.view_contact", "contact_id")}
TITLES = {"customer": _l("Merge customers"), "contact": _l("Merge contacts")}
EXTRA_LABELS = {"birthday": _l("Birthday")}


def _spec(object_name: str) -> dict | None:
    """What the page needs of a mergeable object (the core's, or an addon's ``MergeObject``), or ``None``."""
    if object_name in merge.MODELS:
        return {"permissions": PERMISSIONS[object_name], "list": LISTS[object_name],
                "record": RECORD_PAGES[object_name], "title": TITLES[object_name], "labels": EXTRA_LABELS,
                "formatters": None}
    spec = merge.addon_objects().get(object_name)
    if spec is None:
        return None
    return {"permissions": tuple(spec.permissions), "list": spec.list_endpoint, "record": (spec.endpoint, spec.id_arg),
            "title": spec.title, "labels": dict(spec.labels or {}), "formatters": spec.formatters}


def _owner_names(values) -> dict:
    from core.models import User

    ids = {n for v in values if (n := ascii_int(v)) is not None}
    rows = db.session.execute(select(User).where(User.id.in_(ids))).scalars() if ids else ()
    return {str(u.id): u.label for u in rows}


class MergeForm(FlaskForm):
    """The merge button: the CSRF token; the choices are radio buttons read from the request."""


def _ids(values) -> tuple[list[int], bool]:
    """The ids asked for, in order and once each, and whether any value was not an id."""
    ids, bad = [], False
    for value in values:
        value = (value or "").strip()
        if ascii_int(value) is None:
            bad = True
            continue
        if int(value) not in ids:
            ids.append(int(value))
    return ids, bad


def _display(object_name: str, field: str, records, formatters) -> list[str]:
    texts = [audit.as_text(getattr(r, field)) for r in records]
    formatter = formatters.get((object_name, field)) or (_owner_names if field == "owner_id" else None)
    shown = formatter({t for t in texts if t is not None}) if formatter else {}
    if field in ("owner_id", "parent_id", "customer_id"):
        shown = {t: shown.get(t) or f"#{t}" for t in texts if t is not None}
    return [str(shown.get(t, t)) if t is not None else "" for t in texts]


def _rows(object_name: str, records) -> list[dict]:
    """One row per field: its label, each record's value as shown, whether they differ, the default pick."""
    model, spec = merge.model_of(object_name), _spec(object_name)
    formatters = audit._formatters(current_user)  # the audit trail's display of ids, picklists, fixed values
    if spec["formatters"] is not None:
        formatters.update({(object_name, f): fn for f, fn in spec["formatters"](current_user).items()})
    rows = []
    for field in merge.fields_of(object_name):
        texts = [audit.as_text(getattr(r, field)) for r in records]
        shown = _display(object_name, field, records, formatters)
        default = next((r.id for r, t in zip(records, texts, strict=True) if t is not None), records[0].id)
        rows.append({
            "field": field,
            "label": spec["labels"].get(field) or audit.field_label(model, field),
            "cells": list(zip(records, shown, strict=True)),
            "differs": len(set(texts)) > 1,
            "default": default,  # the first record's value, or the first value there is
        })
    return rows + _custom_rows(object_name, records)


def _custom_rows(object_name: str, records) -> list[dict]:
    """The object's custom fields (core.crm.custom_fields), as rows ``cf.<key>`` of the same table."""
    try:
        from core.crm import custom_fields
    except ImportError:  # pragma: no cover - custom fields are optional to the merge
        return []
    rows = []
    for definition in custom_fields.definitions(object_name):
        stored = [(r.custom or {}).get(definition.key) for r in records]
        texts = [None if v in (None, "", []) else json.dumps(v, sort_keys=True, default=str) for v in stored]
        default = next((r.id for r, t in zip(records, texts, strict=True) if t is not None), records[0].id)
        rows.append({
            "field": f"{merge.CUSTOM_PREFIX}{definition.key}",
            "label": definition.label,
            "cells": [(r, custom_fields.cell(definition, r)) for r in records],
            "differs": len(set(texts)) > 1,
            "default": default,
        })
    return rows


def _record_url(object_name: str, record_id: int) -> str:
    endpoint, arg = _spec(object_name)["record"]
    return url_for(endpoint, **{arg: record_id})


@bp.route("/merge/<object_name>", methods=["GET", "POST"])
def page(object_name: str):
    spec = _spec(object_name)
    if spec is None:  # unknown, or its addon is disabled
        abort(404)
    if not all(current_user.can(p) for p in spec["permissions"]):
        abort(403)
    model = merge.model_of(object_name)
    back = url_for(spec["list"])
    ids, bad = _ids(request.values.getlist("ids"))
    if bad:
        flash(_("The records to merge are given by their ids (numbers); nothing was merged."), "error")
        return redirect(back)
    if len(ids) < 2:
        flash(_("Select at least two records to merge."), "error")
        return redirect(back)
    if len(ids) > merge.MAX_RECORDS:
        flash(_("At most %(max)d records can be merged at once.", max=merge.MAX_RECORDS), "error")
        return redirect(back)
    found = {r.id: r for r in db.session.execute(
        visible_to(current_user, select(model).where(model.id.in_(ids)), model, access="write")).unique().scalars()}
    if len(found) != len(ids):
        flash(_("Some of the records to merge do not exist or you may not change them; nothing was merged."), "error")
        return redirect(back)
    records = [found[i] for i in ids]
    form = MergeForm()
    rows = _rows(object_name, records)
    error = None
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        survivor_id = request.form.get("survivor", "")
        choices: dict[str, int] = {}
        if ascii_int(survivor_id) not in found:
            error = _("Choose the record that stays.")
        else:
            for row in rows:
                picked = request.form.get(f"keep_{row['field']}")
                if picked is None or not row["differs"]:
                    continue
                if ascii_int(picked) not in found:
                    error = _("Choose, for each field, the value of one of the records being merged.")
                    break
                choices[row["field"]] = int(picked)
        if error is None:
            survivor = found[int(survivor_id)]
            losers = [r for r in records if r.id != survivor.id]
            count, name = len(losers), None
            try:
                merge.merge(object_name, survivor, losers, choices, user=current_user)
                name = survivor.name
                db.session.commit()
            except (merge.MergeRefused, recycle.RecordsGone) as refused:  # (gone: merged or deleted meanwhile)
                db.session.rollback()
                error = str(refused)
            except recycle.RecordsInUse:  # rows of a disabled app still point at a record merged away
                db.session.rollback()
                error = _("These records cannot be merged: records of an app that is not enabled still refer to "
                          "them. Nothing was changed.")
            if error is None:
                flash(ngettext("%(num)d record was merged into “%(name)s”. You can undo it from the recycle bin.",
                               "%(num)d records were merged into “%(name)s”. You can undo it from the recycle bin.",
                               count, name=name), "success")
                return redirect(_record_url(object_name, int(survivor_id)))
        if error is not None:
            flash(error, "error")
            records = [db.session.get(model, i) for i in ids]
            if any(r is None for r in records):  # merged or deleted meanwhile (the same merge posted twice...)
                kept = [r for r in records if r is not None]
                return redirect(_record_url(object_name, kept[0].id) if len(kept) == 1 else back)
            rows = _rows(object_name, records)
    status = 400 if error is not None else 200
    picked = request.form.get("survivor", "")
    survivor_id = n if (n := ascii_int(picked)) in found else ids[0]
    return render_template(
        "core/crm/merge.html", object_name=object_name, title=spec["title"], records=records, rows=rows,
        form=form, ids=ids, back=back, survivor_id=survivor_id, record_url=lambda r: _record_url(object_name, r.id),
    ), status
