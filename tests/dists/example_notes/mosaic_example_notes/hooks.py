"""The addon's hook implementations: a menu entry, a permission, a job, an event, the recycle bin and merges."""

from flask_babel import lazy_gettext as _l

from core import Job, MenuItem, Permission, hookimpl
from core.registry import RecycleDependents

READ = "example_notes.note.read"
WRITE = "example_notes.note.write"


@hookimpl
def register_permissions():
    return [
        Permission(READ, _l("Read notes"), addon="example_notes"),
        Permission(WRITE, _l("Write notes"), addon="example_notes"),
    ]


@hookimpl
def register_menu():
    return [MenuItem(label=_l("Notes"), endpoint="example_notes.index", permission=READ, order=90)]


@hookimpl
def register_jobs():
    return [
        Job(
            id="example_notes:count",
            func="mosaic_example_notes.jobs:count_notes",
            trigger="interval",
            trigger_args={"seconds": 1},
            title=_l("Count the notes"),
        )
    ]


@hookimpl
def register_template_context():
    return {"example_notes_greeting": _l("Notes are shared with your whole team.")}


@hookimpl
def addon_enabled(name):
    if name == "example_notes":
        from core.extensions import db
        from core.models import Setting

        Setting.put("example_notes.enabled_once", "yes")
        db.session.commit()


@hookimpl
def recycle_dependents(object_name, ids):
    """A customer's notes go into the recycle bin with it and come back with it."""
    from .models import Note

    if object_name == "customer":
        return [RecycleDependents(Note, "customer_id")]
    return None


@hookimpl
def merge_records(object_name, survivor_id, loser_ids):
    """Notes about merged-away customers move to the surviving one (and back if the merge is undone)."""
    from core.crm.merge import move_rows

    from .models import Note

    if object_name == "customer":
        return [move_rows(Note, "customer_id", survivor_id, loser_ids)]
    return None


@hookimpl
def register_custom_field_objects():
    """Notes carry custom fields: the model has a ``custom`` JSON column (migration example_notes_0003)."""
    from core.registry import CustomFieldObject

    from .models import Note

    return [CustomFieldObject(name="example_notes.note", model=Note, label=_l("Notes"), order=50)]


def _notes_list():
    """The notes as a list of the list engine (every signed-in reader sees every note: no owner)."""
    from sqlalchemy import select

    from core.crm import lists

    from .models import Note

    return lists.ListSpec(model=Note, base=lambda user: select(Note), sorts={"created": Note.id},
                          default_sort="-created", object_name="example_notes.note",
                          custom_object="example_notes.note")


@hookimpl
def register_export_sources():
    """Export CSV / Export XLSX of the notes, their custom fields included."""
    from core.crm.export import Column, ExportSource
    from core.crm.export_views import list_rows

    from .models import Note

    def columns(user):
        return [
            Column("id", _l("ID"), (Note.id.label("note_id"),), lambda row, context: row["note_id"], "number"),
            Column("text", _l("Note"), (Note.text.label("text"),), lambda row, context: row["text"]),
        ]

    return [ExportSource(name="example_notes.notes", label=_l("Notes"), permission=READ, model=Note,
                         rows=list_rows(_notes_list()), columns=columns, custom_object="example_notes.note")]


@hookimpl
def register_duplicate_objects():
    """Notes are checked for duplicates: the same text typed twice (compared as typed, trimmed)."""
    from core.registry import DuplicateField, DuplicateObject, DuplicateRuleDefault

    from .models import Note

    return [DuplicateObject(
        name="example_notes.note", model=Note, label=_l("Notes"), endpoint="example_notes.index",
        permission=WRITE, title_field="text", order=50,
        fields=(DuplicateField("text", _l("Text"), ("text",), kind="raw", fuzzy=True),),
        default_rules=(DuplicateRuleDefault(_l("Same text"), "warn", (("text", "exact"),)),),
    )]
