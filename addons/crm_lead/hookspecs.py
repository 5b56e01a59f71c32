"""Hooks the Leads addon publishes for other addons (crm_sales implements ``lead_converted``).

Every hook is documented in docs/writing-an-addon.md (section 8, "Hooks of your own").
"""

from core import hookspec  # noqa: F401


@hookspec
def lead_converted(lead, customer, contact, user, options, owner_id):
    """A lead was converted into ``customer`` and ``contact``, inside the conversion's transaction.

    Called by :func:`addons.crm_lead.convert.convert` (the page ``/crm_lead/<id>/convert`` and ``POST
    /api/v1/crm_lead.leads/<id>/convert``) after the customer and contact are flushed and the lead is marked
    converted. *Collected*: the dicts every implementation returns are merged into the lead's
    ``converted_records`` (shown on its page).

    Create what your addon makes of a converted lead (crm_sales: an opportunity in the customer's default
    sales process) and return ``{"object": id}`` of what you created, or ``None``. Do not commit; raise to
    refuse the conversion: the whole conversion is rolled back and the user sees "The lead was not
    converted: " followed by the message of the exception (translate it).

    :param lead: the :class:`addons.crm_lead.models.Lead` (status ``converted`` already).
    :param customer: the new or existing :class:`core.crm.models.Customer`.
    :param contact: the new or existing :class:`core.crm.models.Contact`, or ``None`` (no contact chosen).
    :param user: the user converting.
    :param options: what the user chose: the form's ``option.<name>`` inputs, or the API body's ``options``
        object (e.g. ``{"opportunity": "1", "opportunity_name": "…"}``).
    :param owner_id: the owner the conversion chose for its new records (the form's "Owner", default the
        lead's owner, else ``user``): what you create belongs to it, like the customer and contact. Added
        later: an implementation that leaves it out of its arguments still works (pluggy passes only those
        declared).
    :return: a dict ``{"object": id}``, or ``None``.
    """


@hookspec
def crm_lead_conversion_options(lead, user):
    """The inputs this addon adds to the lead conversion form (``/crm_lead/<id>/convert``).

    Called when the form is drawn and when it is posted. *Collected.* Each input is a dict ``{"name":
    "opportunity", "label": lazy text, "type": "checkbox" or "text", "default": True or "…", "help": lazy
    text (optional)}``; names are namespaced by your usage (crm_sales: ``opportunity``,
    ``opportunity_name``). What the user chose reaches ``lead_converted`` as ``options[name]``: ``"1"`` or
    absent for a checkbox, the trimmed text (at most 255 characters) for a text input.

    :param lead: the lead being converted.
    :param user: the user converting.
    :return: a list of dicts, or ``None``.
    """
