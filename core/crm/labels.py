"""The translated labels of the customer base's fixed values (one place: forms, lists, audit, sharing rules)."""

from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

CLASSIFICATION_LABELS = {"normal": _l("Normal"), "vip": _l("VIP"), "strategic": _l("Strategic")}
CUSTOMER_STATUS_LABELS = {"active": _l("Active"), "inactive": _l("Inactive")}
ACTIVITY_KIND_LABELS = {
    "call": _l("Call"),
    "visit": _l("Visit"),
    "meeting": _l("Meeting"),
    "task": _l("Task"),
    "email": _l("Email"),
    "sms": _l("SMS"),
    "note": _lp("activity kind", "Note"),
}
ACTIVITY_STATE_LABELS = {"planned": _l("Planned"), "done": _l("Done"), "cancelled": _l("Cancelled")}
