"""The addon's hook implementations: a menu entry, a permission, a job and an event."""

from flask_babel import lazy_gettext as _l

from core import Job, MenuItem, Permission, hookimpl

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
