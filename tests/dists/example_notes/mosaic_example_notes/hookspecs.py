"""Hooks this addon publishes for other addons (their names start with the addon's name)."""

from core import hookspec


@hookspec
def example_notes_note_added(note):
    """Called after a note is saved. *Collected*; the return value is ignored.

    :param note: the new :class:`mosaic_example_notes.models.Note`.
    """
