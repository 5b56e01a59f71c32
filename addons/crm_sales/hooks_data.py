"""Sales: hook implementations of the REST API, import, export, merge, handover and lead conversion."""

from core import hookimpl

from .hooks import DELETE, WRITE


@hookimpl
def register_import_objects():
    from .opportunity_import import import_object

    return [import_object(WRITE)]


@hookimpl
def register_merge_objects():
    from .data_links import merge_object

    return [merge_object(WRITE, DELETE)]


@hookimpl
def register_export_sources():
    from .data_links import export_source

    return [export_source()]


@hookimpl
def crm_lead_conversion_options(lead, user):
    from .convert_lead import conversion_options

    return conversion_options(lead, user)


@hookimpl
def lead_converted(lead, customer, contact, user, options, owner_id):
    from .convert_lead import lead_converted as make_opportunity

    return make_opportunity(lead, customer, contact, user, options, owner_id)


@hookimpl
def merge_records(object_name, survivor_id, loser_ids):
    from .data_links import merge_moves

    return merge_moves(object_name, survivor_id, loser_ids)


@hookimpl
def handover_records(from_user_id, to_user_id, dry_run):
    from .data_links import handover

    return handover(from_user_id, to_user_id, dry_run)


@hookimpl
def recycle_dependents(object_name, ids):
    from .data_links import dependents

    return dependents(object_name)


@hookimpl
def register_api_resources():
    from .api import opportunity_resource

    return [opportunity_resource()]
