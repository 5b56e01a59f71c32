"""Import (导入) of customers — with their first contact — and of contacts, from CSV or XLSX files.

Registered as a core plugin (core.plugins.CORE_PLUGINS) and blueprint (CORE_BLUEPRINTS); permission
``core.import.run`` (plus writing customers or contacts). The pages:

1. **Upload** (``/import/customer/``, ``/import/contact/``; "Import" on the customer and contact lists): the
   file is stored under ``<instance>/imports/`` and read once through (:func:`core.crm.imports_read.inspect`):
   encoding, delimiter, header, a few sample rows, the row count — a broken file is refused here with a
   clear message.
2. **Mapping** (``/import/<id>/mapping``): each column with its sample values and the field it goes to,
   suggested from the header (:func:`core.crm.imports_fields.suggest`) or remembered from the user's last
   file with the same headers; the mode (create / update by a key / create or update) and the key field.
   "Check (dry run)" validates every row without writing; "Import" imports.
3. **The batch** (``/import/<id>``): a progress bar fed by ``/import/<id>/status`` (JSON, polled by
   ``core/static/js/import.js``), the counts, the first problem rows with their reasons and duplicates, the
   error file (``/import/<id>/errors.csv``: the original rows that were not imported with an error column,
   to fix and import again), "Import now" after a dry run, and "Undo import".

The work happens in :mod:`core.crm.imports_engine` (chunks, bulk writes) in the background
(:mod:`core.crm.imports_run`).
"""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import and_, func, or_, select
from wtforms import SelectField

from core.crm import imports_run
from core.crm.customers import CONTACT_WRITE, CUSTOMER_WRITE
from core.crm.imports_fields import OBJECTS, fields_for, import_objects, lookup_fields, suggest
from core.crm.imports_models import MODES, ImportBatch
from core.crm.imports_read import ImportFileError, inspect
from core.extensions import db
from core.hookspecs import hookimpl
from core.registry import Permission
from core.security import permission_required

bp = Blueprint("crm_import", __name__, url_prefix="/import")

IMPORT_RUN = "core.import.run"
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
HISTORY_LIMIT = 20
WRITE_PERMISSION = {"customer": CUSTOMER_WRITE, "contact": CONTACT_WRITE}
OBJECT_LABELS = {"customer": _l("Customers"), "contact": _l("Contacts")}
MODE_LABELS = {
    "create": _l("Create new records"),
    "update": _l("Update existing records (by a key)"),
    "upsert": _l("Create or update (by a key)"),
}
#: the counts of a batch about to run (those of a dry run before it, or of nothing)
FRESH = {**dict.fromkeys(("processed", "created", "updated", "skipped", "failed", "contacts_created"), 0), "preview": []}
STATUS_LABELS = {
    "uploaded": _l("Uploaded"), "validating": _l("Checking…"), "validated": _l("Checked"),
    "running": _l("Importing…"), "done": _l("Imported"), "failed": _l("Failed"), "undoing": _l("Undoing…"),
    "undone": _l("Undone"), "interrupted": _l("Interrupted"), "queued": _l("Waiting for another import to finish…"),
}


class UploadForm(FlaskForm):
    file = FileField(_l("CSV or Excel (.xlsx) file"))


class MappingForm(FlaskForm):
    """The mode and key; the columns' fields are ``column-<n>`` selects read by :func:`_read_mapping`."""

    mode = SelectField(_l("What to do"), choices=[], validate_choice=False)
    key = SelectField(_l("Key field (to find existing records)"), choices=[], validate_choice=False)


class ActionForm(FlaskForm):
    """Only the CSRF token (run, undo)."""


# -- helpers ------------------------------------------------------------------------------------------
def _check_object(object_name: str) -> None:
    if object_name in OBJECTS:
        permission = WRITE_PERMISSION[object_name]
    else:
        spec = import_objects().get(object_name)
        if spec is None:  # unknown, or its addon is disabled
            abort(404)
        permission = spec.permission
    if not current_user.can(permission):
        abort(403)


def _object_label(object_name: str):
    return OBJECT_LABELS.get(object_name) or import_objects()[object_name].label


def _page_texts(object_name: str) -> tuple[object, str]:
    """The upload page's help sentence and the list it links back to."""
    if object_name == "customer":
        return "", url_for("crm_customers.index")
    if object_name == "contact":
        return "", url_for("crm_customers.contacts")
    spec = import_objects()[object_name]
    return spec.help, url_for(spec.list_endpoint)


def _batch_or_404(batch_id: int) -> ImportBatch:
    batch = db.session.get(ImportBatch, batch_id)
    if batch is None or (batch.user_id != current_user.id and not current_user.is_admin):
        abort(404)
    _check_object(batch.object)
    imports_run.release_stale_queue(batch)  # left waiting by a process that stopped: startable again
    return batch


def _mappable(batch: ImportBatch) -> bool:
    """Its mapping may still be chosen, and the file checked or imported: uploaded, checked, or failed before it
    wrote any row (:func:`_mappable_sql` says the same to the database)."""
    return batch.status in ("uploaded", "validated") or (batch.status == "failed" and not batch.processed)


def _mappable_sql():
    return or_(ImportBatch.status.in_(("uploaded", "validated")),
               and_(ImportBatch.status == "failed", func.coalesce(ImportBatch.processed, 0) == 0))


def _already_started(batch: ImportBatch):
    """A second submit of a batch (a double click, another tab): refused, to its page."""
    flash(_("This import has already been started (submitted twice?): here is how it is going."), "error")
    return redirect(url_for("crm_import.view", batch_id=batch.id))


def _history(object_name: str):
    return db.session.execute(
        select(ImportBatch).where(ImportBatch.user_id == current_user.id, ImportBatch.object == object_name)
        .order_by(ImportBatch.id.desc()).limit(HISTORY_LIMIT)
    ).scalars().all()


def _fields(object_name: str):
    fields = fields_for(object_name)
    if object_name == "customer" and not current_user.can(CONTACT_WRITE):
        fields = [f for f in fields if not f.on_contact]
    return fields


# -- upload -------------------------------------------------------------------------------------------
@bp.route("/<object_name>/", methods=["GET", "POST"])
@permission_required(IMPORT_RUN)
def upload(object_name: str):
    _check_object(object_name)
    form = UploadForm()
    status = 200
    if request.method == "POST" and form.validate_on_submit():
        storage = form.file.data
        max_bytes = int(current_app.config.get("IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))
        if storage is None or not getattr(storage, "filename", ""):
            form.file.errors.append(_("Choose a file to upload."))
        elif request.content_length and request.content_length > max_bytes:
            form.file.errors.append(_("The file is too large: at most %(mb)d MB.", mb=max_bytes // (1024 * 1024)))
        else:
            file_name = Path(storage.filename).name[:255]
            stored = imports_run.new_stored_name(file_name)
            path = imports_run.folder() / stored
            storage.save(path)
            try:
                info = inspect(path, file_name)
            except ImportFileError as exc:
                path.unlink(missing_ok=True)
                form.file.errors.append(str(exc))
            except BaseException:  # no batch refers to the file: it must not stay behind
                path.unlink(missing_ok=True)
                raise
            else:
                from core.i18n import current_language

                batch = ImportBatch(
                    user_id=current_user.id, object=object_name, file_name=file_name, stored_name=stored,
                    file_format=info.file_format, encoding=info.encoding, delimiter=info.delimiter,
                    header=info.header, samples=info.samples, total_rows=info.total_rows, status="uploaded",
                    language=current_language(), mapping=[], preview=[], message="",
                )
                db.session.add(batch)
                db.session.commit()
                return redirect(url_for("crm_import.mapping", batch_id=batch.id))
        status = 400
    elif request.method == "POST":
        status = 400
    help_text, back_url = _page_texts(object_name)
    return render_template("core/crm/import_upload.html", form=form, object_name=object_name,
                           object_label=_object_label(object_name), history=_history(object_name),
                           help_text=help_text, back_url=back_url,
                           status_labels=STATUS_LABELS, mode_labels=MODE_LABELS), status


# -- mapping ------------------------------------------------------------------------------------------
def _read_mapping(batch: ImportBatch, fields) -> tuple[list[str], str, str, list[str]]:
    """The columns' fields, the mode and the key from the form, and the errors."""
    known = {f.key: f for f in fields}
    sent = [(request.form.get(f"column-{i}") or "").strip() for i in range(len(batch.header))]
    columns = [key if key in known else "" for key in sent]
    # a field deactivated since the page was shown: said, not left out (its column shows unmapped again)
    errors = [imports_run.stale_message(label) for label in imports_run.stale_fields(batch.object, sent, fields)]
    mode = request.form.get("mode") or "create"
    if mode not in MODES:
        mode = "create"
    key_field = (request.form.get("key") or "").strip()
    chosen: dict[str, int] = {}
    for i, key in enumerate(columns):
        if not key:
            continue
        if key in chosen:
            errors.append(_("“%(field)s” is chosen for two columns: “%(first)s” and “%(second)s”.",
                            field=known[key].label, first=batch.header[chosen[key]], second=batch.header[i]))
        chosen.setdefault(key, i)
    if not chosen:
        errors.append(_("Choose a field for at least one column."))
    if mode != "update":
        for f in fields:
            if f.required and f.kind != "custom" and f.key not in chosen:
                errors.append(_("Choose the column that holds “%(field)s”: it is required.", field=f.label))
    if any(k.startswith("contact.") for k in chosen) and "contact.name" not in chosen:
        errors.append(_("Choose the column of the contact's name to import contacts with the customers."))
    if mode in ("update", "upsert"):
        lookups = {f.key for f in lookup_fields(batch.object)}
        if key_field not in lookups:
            errors.append(_("Choose the key field that finds the existing records."))
        elif key_field not in chosen:
            errors.append(_("The key field “%(field)s” must be one of the imported columns.",
                            field=known[key_field].label))
    else:
        key_field = ""
    return columns, mode, key_field, errors


@bp.route("/<int:batch_id>/mapping", methods=["GET", "POST"])
@permission_required(IMPORT_RUN)
def mapping(batch_id: int):
    batch = _batch_or_404(batch_id)
    if not _mappable(batch):
        if request.method == "POST":
            return _already_started(batch)
        return redirect(url_for("crm_import.view", batch_id=batch.id))
    fields = _fields(batch.object)
    form = MappingForm()
    form.mode.choices = list(MODE_LABELS.items())
    form.key.choices = [("", "—")] + [(f.key, str(f.label)) for f in lookup_fields(batch.object)]
    errors, note = [], ""
    if request.method == "POST" and form.validate_on_submit():
        columns, mode, key_field, errors = _read_mapping(batch, fields)
        if not errors:
            job = "dry_run" if request.form.get("action") == "dry_run" else "run"
            header, object_name = list(batch.header), batch.object
            if not imports_run.claim(batch, job, _mappable_sql(), mapping=columns, mode=mode,
                                     key_field=key_field or None, **FRESH):
                return _already_started(batch)
            imports_run.remember(current_user.id, object_name, header, columns, mode, key_field)
            imports_run.launch(batch, job)
            return redirect(url_for("crm_import.view", batch_id=batch.id))
        form.mode.data, form.key.data = mode, key_field
    elif request.method == "POST":
        columns, errors = list(batch.mapping or []), [_("The form could not be accepted: reload the page.")]
    else:
        memory = imports_run.remembered(current_user.id, batch.object, list(batch.header))
        if batch.mapping:
            columns = list(batch.mapping)
            form.mode.data, form.key.data = batch.mode, batch.key_field or ""
        elif memory is not None:
            columns = memory["columns"]
            form.mode.data, form.key.data = memory["mode"], memory["key"]
            note = _("These are the fields you chose last time for a file with the same columns.")
        else:
            columns = suggest(list(batch.header), fields)
    samples = [[(row[i] if i < len(row) else "") for row in batch.samples] for i in range(len(batch.header))]
    return render_template(
        "core/crm/import_mapping.html", batch=batch, form=form, fields=fields, columns=columns, samples=samples,
        errors=errors, note=note, object_label=_object_label(batch.object),
    ), 400 if errors else 200


# -- the batch ----------------------------------------------------------------------------------------
@bp.route("/<int:batch_id>")
@permission_required(IMPORT_RUN)
def view(batch_id: int):
    batch = _batch_or_404(batch_id)
    known = {f.key: f.label for f in fields_for(batch.object)}
    mapped = [(h, known.get(k, k)) for h, k in zip(batch.header, batch.mapping or [], strict=False) if k]
    return render_template(
        "core/crm/import_batch.html", batch=batch, state=imports_run.status(batch), mapped=mapped,
        action_form=ActionForm(), status_labels=STATUS_LABELS, mode_labels=MODE_LABELS,
        object_label=_object_label(batch.object), key_label=known.get(batch.key_field or "", ""),
        has_errors=imports_run.error_path(batch).exists() and (batch.failed or batch.skipped),
    )


@bp.route("/<int:batch_id>/status")
@permission_required(IMPORT_RUN)
def status(batch_id: int):
    batch = _batch_or_404(batch_id)
    state = imports_run.status(batch)
    state["label"] = str(STATUS_LABELS.get(state["status"], state["status"]))
    return jsonify(state)


@bp.route("/<int:batch_id>/errors.csv")
@permission_required(IMPORT_RUN)
def errors(batch_id: int):
    batch = _batch_or_404(batch_id)
    path = imports_run.error_path(batch)
    if not path.exists():
        abort(404)
    name = f"{Path(batch.file_name).stem}-errors.csv"
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=name, max_age=0)


@bp.route("/<int:batch_id>/run", methods=["POST"])
@permission_required(IMPORT_RUN)
def run(batch_id: int):
    batch = _batch_or_404(batch_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    if batch.status != "validated":
        if imports_run.effective_status(batch) in ("running", "queued", "done"):
            return _already_started(batch)
        flash(_("Only a checked file can be imported from here."), "error")
        return redirect(url_for("crm_import.view", batch_id=batch.id))
    stale = imports_run.stale_fields(batch.object, batch.mapping, _fields(batch.object))
    if stale:  # a field deactivated since the dry run: its values would be left out without a word
        for label in stale:
            flash(imports_run.stale_message(label), "error")
        return redirect(url_for("crm_import.mapping", batch_id=batch.id))
    if not imports_run.start(batch, "run", ImportBatch.status == "validated", **FRESH):
        return _already_started(batch)
    return redirect(url_for("crm_import.view", batch_id=batch.id))


@bp.route("/<int:batch_id>/undo", methods=["POST"])
@permission_required(IMPORT_RUN)
def undo(batch_id: int):
    batch = _batch_or_404(batch_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    if batch.dry_run or imports_run.effective_status(batch) not in ("done", "failed", "interrupted") \
            or not (batch.created or batch.updated or batch.contacts_created) \
            or not imports_run.start(batch, "undo", imports_run.undoable()):  # (false: undone meanwhile, twice sent)
        flash(_("This import cannot be undone: it changed nothing, or it was undone already."), "error")
        return redirect(url_for("crm_import.view", batch_id=batch.id))
    flash(_("Undoing the import: the records it created go to the recycle bin, the records it changed get their "
            "old values back."), "success")
    return redirect(url_for("crm_import.view", batch_id=batch.id))


# -- hooks --------------------------------------------------------------------------------------------
@hookimpl
def register_permissions():
    return [Permission(IMPORT_RUN, _l("Import records from CSV and Excel files"))]
