"""Leads: hook implementations of the core's data tools — import (CSV and Excel files into leads) and the
merge of duplicate leads."""

from core import hookimpl

from .hooks import DELETE, WRITE


@hookimpl
def register_import_objects():
    from .lead_import import import_object

    return [import_object(WRITE)]


@hookimpl
def register_merge_objects():
    from .lead_merge import merge_object

    return [merge_object(WRITE, DELETE)]


@hookimpl
def merge_records(object_name, survivor_id, loser_ids):
    if object_name != "lead":
        return None
    from .lead_merge import move_activities

    return move_activities(survivor_id, loser_ids)
