"""Every hook of Mosaic CRM: the reference for writing an addon.

An addon implements hooks in the module its manifest names as ``hooks`` (``Addon(hooks=...)``)::

    from core import hookimpl

    @hookimpl
    def register_menu():
        return [MenuItem(label=_l("Notes"), endpoint="example_notes.index", order=50)]

Rules that hold for every hook below:

* Hooks are called with **keyword arguments**. An implementation may accept any subset of the
  arguments a spec names (pluggy passes only those it asks for), so specs may gain arguments in later
  versions but never lose them.
* Only the implementations of **enabled** addons run (core's own always run). The one place that decides
  this is :class:`core.plugins.HookRelay`; no implementation needs to check whether it is enabled.
* Hooks marked *collected* return a list with one entry per implementation that returned something
  other than ``None``; the caller flattens lists of lists. Hooks marked *first result* stop at the first
  implementation that returns something other than ``None``.
* Never rely on the order in which implementations run; sort by the ``order`` field where a hook
  offers one, or use ``tryfirst``/``trylast``.

What an addon does **not** contribute through a hook, but declares in its manifest
(:class:`core.manifest.Addon`): its blueprint (registered at start-up for every loadable addon and
answered with 404 while the addon is disabled), its models module, its templates, static files,
translations and migrations.

An addon that others extend publishes hookspecs of its own in the module its manifest names as
``hookspecs``; their names start with the addon's name (``erp_bridge_register_connectors``).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("mosaic")
hookimpl = pluggy.HookimplMarker("mosaic")


# ---------------------------------------------------------------------------------------------------
# Registration: contributions an addon makes while it is enabled
# ---------------------------------------------------------------------------------------------------


@hookspec
def register_menu():
    """Return the main-menu entries this addon contributes.

    Called on every page render for the current user. *Collected.*

    :return: a list of :class:`core.registry.MenuItem`. An item whose ``permission`` the current user
        lacks is not shown.
    """


@hookspec
def register_permissions():
    """Return the permissions this addon defines, so that an admin can grant them to roles.

    Called when the roles page is drawn and when permissions are checked. *Collected.*

    :return: a list of :class:`core.registry.Permission`; names are namespaced by the addon
        (``crm_lead.lead.read``).
    """


@hookspec
def register_jobs():
    """Return the scheduled jobs this addon runs while it is enabled.

    Called by the scheduler whenever the set of enabled addons changes. *Collected.*

    :return: a list of :class:`core.registry.Job`. ``Job.func`` is a ``"module:function"`` string,
        imported lazily when the job first runs; the function receives no arguments and runs inside an
        application context. Job ids are namespaced by the addon (``crm_lead:pool_recycle``). Jobs must
        be idempotent: a run missed while the scheduler was down runs once, not many times.
    """


@hookspec
def register_admin_links():
    """Return links to show in the administration menu (settings pages of the addon).

    Called on every page render for administrators. *Collected.*

    :return: a list of :class:`core.registry.MenuItem`.
    """


@hookspec
def register_template_context():
    """Return a dict of extra variables made available to every template.

    Called on every page render. *Collected*; later keys win on a clash, so prefix yours.
    """


@hookspec
def register_customer_panels():
    """Return the panels this addon adds to the 360° customer view.

    Called when a customer's page is drawn. *Collected.* A disabled addon's panels disappear.

    :return: a list of :class:`core.registry.CustomerPanel`; each ``render(customer, user)`` returns the
        panel's HTML (a ``markupsafe.Markup``, usually ``render_template(...)``) and must apply
        :func:`core.crm.visibility.visible_to` to whatever records it lists.
    """


@hookspec
def register_dashboard_widgets():
    """Return the widgets this addon adds to the home page (the dashboard).

    Called when the home page is drawn. *Collected.* A disabled addon's widgets disappear.

    :return: a list of :class:`core.registry.DashboardWidget`; each ``render(user)`` returns the widget's
        HTML (a ``markupsafe.Markup``, usually ``render_template(...)``; charts from :mod:`core.charts`) and
        must apply :func:`core.crm.visibility.visible_to` to whatever records it counts or lists. A widget
        whose ``permission`` the user lacks is not drawn; one whose ``render`` raises is logged and replaced
        by a short notice, so a broken widget never takes the home page down. A widget with
        ``cache_seconds`` is re-rendered at most that often per user (aggregates over many records).
    """


@hookspec
def register_search_providers():
    """Return the searches this addon adds to the global search box.

    Called for every global search. *Collected.*

    :return: a list of :class:`core.registry.SearchProvider`; ``search(user, query, limit)`` returns at most
        ``limit`` :class:`core.registry.SearchHit` of records the user may see.
    """


@hookspec
def register_api_resources():
    """Return the REST resources this addon serves under ``/api/v1``.

    Called when an API request is routed and when ``/api/v1/openapi.json`` is built. *Collected.*

    :return: a list of :class:`core.registry.ApiResource`, named after the addon
        (``crm_lead.leads`` is served at ``/api/v1/crm_lead.leads``).
    """


@hookspec
def register_picklists():
    """Return the picklists (admin-editable value lists) this addon uses, with their default values.

    Called by the picklist admin page and when an instance is initialised. *Collected.*

    :return: a list of :class:`core.registry.Picklist`.
    """


@hookspec(firstresult=True)
def resolve_record(object_name, record_id, user):
    """Name and link one record of an addon's object, if it exists and ``user`` may see it.

    Called when an activity (or anything else linked by ``related_object``/``related_id``) points at a
    record of another addon: the addon owning ``object_name`` answers, the others return ``None``.
    *First result.* Nobody answering (the addon is disabled or absent, the record is missing or hidden)
    means the link is refused on entry and shown as plain text afterwards.

    :param object_name: the object, namespaced by its addon (``"crm_sales.opportunity"``).
    :param record_id: the record's id (an ``int``).
    :param user: the current user; apply :func:`core.crm.visibility.visible_to`.
    :return: a :class:`core.registry.RecordRef`, or ``None``.
    """


@hookspec
def register_custom_field_objects():
    """Return the objects of this addon whose records may carry custom fields (自定义字段).

    Called when custom field definitions are read (once per request at most) and by the custom fields
    page (*Settings → Custom fields*). *Collected.* The core registers ``customer`` and ``contact`` this
    way. A model qualifies when it has a ``custom`` JSON column (nullable); values are stored there as
    ``{key: value}``, so an administrator adds fields without a migration or a restart. Read and write
    them with :func:`core.crm.custom_fields.get_values` / :func:`core.crm.custom_fields.set_values`, build
    form fields with :func:`core.crm.custom_fields.extend_form`. While the addon is disabled its objects
    (and their definitions) are hidden; the values stay in the rows.

    :return: a list of :class:`core.registry.CustomFieldObject`.
    """


@hookspec
def register_export_sources():
    """Return the lists of this addon that can be exported to CSV and XLSX (导出).

    Called for every export request (``/export/<name>.<csv|xlsx>``). *Collected.* The export holds exactly
    the rows the list shows its reader — build ``rows`` from the list's own filtered select, e.g.
    :func:`core.crm.export_views.list_rows` of its :class:`core.crm.lists.ListSpec` (visibility included) —
    read in keyset batches and streamed. Draw the buttons with ``export_macros.html``'s
    ``buttons(name, page)``. The user needs ``core.export.run`` and the source's ``permission``.

    :return: a list of :class:`core.crm.export.ExportSource`, named after the addon (``crm_lead.leads``).
    """


@hookspec
def register_import_objects():
    """Return the objects of this addon that CSV and XLSX files can be imported into (导入).

    *Collected.* The core's import does the rest: upload, column mapping suggested from the fields' names and
    synonyms (remembered), create / update by key / create-or-update, dry run, background run with a progress
    bar, error file, duplicate rules of the object (same name), custom fields, audit trail, undo as one batch.
    Its pages are ``/import/<name>/``; link an "Import" button there from your list.

    :return: a list of :class:`core.crm.imports_fields.ImportObject`.
    """


@hookspec
def register_duplicate_objects():
    """Return the objects of this addon whose records duplicate rules (查重规则) check.

    Called when rules are read or checked — on entry (the forms' live check and save), on import, by
    "Find duplicates" and by the rules page (*Settings → Duplicate rules*). *Collected.* The core
    registers ``customer`` and ``contact`` this way. Each field names the model's indexed columns holding its
    normalised key — fill them on every save with :mod:`core.crm.dedup_normalise` (``name_key``,
    ``phone_key``, ``email_key``, ``text_key``), so that a check is an index lookup; fuzzy fields are
    compared with rapidfuzz within the records next to the key in index order. Check with
    :func:`core.crm.dedup.check` (one record) and :func:`core.crm.dedup.check_many` (a batch). While the
    addon is disabled its objects and rules are ignored; the rules stay.

    :return: a list of :class:`core.registry.DuplicateObject`.
    """


@hookspec
def register_notification_channels():
    """Return the channels through which this addon delivers notifications (SMS, WeChat...).

    Called whenever :func:`core.notify.notify` runs and when the channels are delivered after the commit,
    and by the notifications page (where a user turns channels off). *Collected.* The core's own channels
    are ``inapp`` (always on) and ``email``. A channel is an object with ``name`` (unique, namespaced:
    ``crm_marketing.sms``), ``label`` (lazily translated), ``send(user, notification)`` and optionally
    ``available()`` (``False``: not configured, no delivery is recorded). ``send`` runs after the business
    transaction has committed, in the delivery thread (an application context and a session of its own,
    which it may use), inside ``force_locale`` of the recipient's language; it receives the
    :class:`core.models.User` and the :class:`core.notify_models.Notification` (``subject``, ``body``,
    ``url``, ``data``, already in the recipient's language). Return ``False`` to record the delivery as
    skipped (no mobile number...); raise to record it as failed (it is retried by the job
    ``core:notification_deliveries``); anything else means sent.

    :return: a list of channel objects.
    """


@hookspec
def handover_records(from_user_id, to_user_id, dry_run):
    """Move every record of this addon that ``from_user_id`` owns to ``to_user_id`` (交接, handover).

    Called when an administrator hands a departing user's records over to a colleague (*Settings →
    Handover*): once with ``dry_run=True`` for the preview, then once with ``dry_run=False``. *Collected.*
    Every implementation runs inside **one** transaction that the caller commits: if any implementation
    raises, nothing moves anywhere. Move records set-based — one ``UPDATE … WHERE owner_id = :from`` per
    table, never a loop over rows — and move history too (done activities, closed deals): the receiving
    user inherits the whole record. Leave the user's personal settings (saved views, tokens) alone.
    Do not commit.

    :param from_user_id: the departing user's id.
    :param to_user_id: the receiving user's id (an active user, never ``from_user_id``).
    :param dry_run: ``True``: change nothing, only count what would move (the caller rolls back anyway).
    :return: a list of :class:`core.registry.HandoverResult`, one per object (``count`` may be 0).
    """


@hookspec
def recycle_dependents(object_name, ids):
    """Name this addon's records that depend on records going to the recycle bin (回收站).

    Called when records of ``object_name`` (the core's ``"customer"``, ``"contact"``, ``"activity"``, or any
    object put in the bin with :func:`core.crm.recycle.trash`) are deleted or merged away, inside the
    deleting transaction, before anything is deleted. *Collected.* The core snapshots the rows named here
    column by column into the same bin entry: ``detach=False`` rows are deleted with the records and
    re-inserted (same ids) on restore; ``detach=True`` rows only lose their link (the column is set to
    ``NULL``) and get it back on restore. Rows of tables whose foreign key to the records says ``ON DELETE
    CASCADE`` are snapshotted without being named. Do not delete or commit anything yourself.

    A column shared by several objects' ids (an activity's ``related_id``, with ``related_object``) names its
    rows with ``only`` (``Activity.related_object == "lead"``) and the table it refers to with ``refers_to``
    (no foreign key says it): a record restored under a new id — SQLite gives a deleted record's id to the next
    new one — then takes its detached rows along, as foreign keys are followed.

    :param object_name: the object whose records go to the bin (``"customer"``).
    :param ids: their ids (a list of ``int``).
    :return: a list of :class:`core.registry.RecycleDependents` (``model``, ``column``, ``detach``,
        ``object``, ``only``, ``refers_to``), or ``None``.
    """


@hookspec
def register_merge_objects():
    """Return the objects of this addon whose duplicates users merge (合并) like customers and contacts.

    *Collected.* The core's merge page ``/merge/<name>?ids=…`` then lets a user pick the surviving record and
    each field's value, moves related records through ``merge_records`` (called with your object's name),
    records the merge in the audit trail and puts the others into the recycle bin as one entry, from which
    the merge is undone. Link it from your list's bulk actions.

    :return: a list of :class:`core.registry.MergeObject`.
    """


@hookspec
def merge_records(object_name, survivor_id, loser_ids):
    """Move this addon's records from merged-away records to the surviving one (合并, merge).

    Called when a user merges duplicates of ``object_name`` (``"customer"``, ``"contact"``, an addon's
    object of ``register_merge_objects``), inside the
    merging transaction, after the survivor got the chosen values and before the losers go to the recycle
    bin. *Collected.* Move set-based with :func:`core.crm.merge.move_rows` (one ``UPDATE`` per table,
    which also records what moved) so that undoing the merge from the recycle bin moves the rows back.
    Rows you leave pointing at a loser follow it into the bin through ``recycle_dependents``. Do not commit.

    :param object_name: the merged object.
    :param survivor_id: the id of the record that stays.
    :param loser_ids: the ids of the records merged into it (a list of ``int``, never ``survivor_id``).
    :return: a list of :class:`core.registry.MergeMove` (what :func:`core.crm.merge.move_rows` returns),
        or ``None``.
    """


# ---------------------------------------------------------------------------------------------------
# Lifecycle: events around the application and the addons
# ---------------------------------------------------------------------------------------------------


@hookspec
def startup(app):
    """Called once when the application object is created, after every addon blueprint is registered.

    :param app: the Flask application.
    :return: nothing.
    """


@hookspec
def addon_enabled(name, app):
    """Called after the addon ``name`` has been enabled and its migrations have run.

    The implementations of the addon that has just been enabled run too, so an addon can set up its
    defaults here. Called once per addon, dependencies first.

    :param name: the addon just enabled.
    :param app: the Flask application.
    """


@hookspec
def addon_disabled(name, app):
    """Called after the addon ``name`` has been disabled. Its tables and rows are kept.

    :param name: the addon just disabled (its own implementations no longer run).
    :param app: the Flask application.
    """


@hookspec
def load_demo_data(edition, language):
    """Fill the database with demonstration records (``mosaic demo``).

    Called once, after every addon of the edition is enabled, inside an application context and a
    transaction the caller commits, with ``language`` active (``str(_l("Sales rep"))`` is the demo's
    language, whatever the language of the command line). Implementations must be idempotent (skip what exists).

    :param edition: the :class:`core.manifest.Edition` being demonstrated.
    :param language: the instance's default language (``zh_CN``, ``en``, ``zh_TW``), to pick demo
        names in.
    """
