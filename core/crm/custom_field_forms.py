"""Forms of custom fields: the fields a record's form gains (built per request from the definitions), and
the administrator's form that defines one field."""

from __future__ import annotations

import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from core.crm import custom_fields
from core.crm.custom_fields import (
    KEY_PATTERN,
    LOOKUP_LABELS,
    LOOKUP_TARGETS,
    PICKLIST_TYPES,
    TEXT_MAX,
    TYPE_LABELS,
    TYPES,
    CustomFieldDef,
    Money,
)
from core.crm.customer_forms import ReferenceField
from core.validators import Required

PREFIX = "cf_"
CURRENCY_SUFFIX = "__currency"
LABEL_LANGUAGES = ("zh_CN", "en", "zh_TW")
LOOKUP_SUGGEST = {
    "customer": "crm_customers.suggest",
    "contact": "crm_custom_fields.suggest_contacts",
    "user": "crm_customers.suggest_users",
}


class MultiCheckboxField(SelectMultipleField):
    """A multi-select picklist drawn as checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class _Check:
    """Parse and validate a custom field's input with its definition; the value lands in ``field.value``.

    ``current`` is the value the edited record holds (``None`` for a new one): saved unchanged, it is kept
    even when a new choice of it would be refused (see :meth:`CustomFieldDef.validate`).
    """

    def __init__(self, definition: CustomFieldDef, current=None):
        self.definition = definition
        self.current = current

    def __call__(self, form, field):
        d = self.definition
        try:
            if d.type == "checkbox":
                value = bool(field.data)
            elif d.type == "multi_picklist":
                value = list(field.data or [])
            elif d.type == "money":
                value = d.parse(field.data or "")
                if value is not None:
                    chosen = _currency(d, field.data, getattr(form, PREFIX + d.key + CURRENCY_SUFFIX))
                    value = Money(value.amount, chosen)
            else:
                value = d.parse(field.data or "")
            user = current_user if current_user and current_user.is_authenticated else None
            d.validate(value, user, self.current)
        except ValueError as exc:
            field.value = None
            raise ValidationError(str(exc)) from None
        field.value = value


def _currency(d: CustomFieldDef, text, select) -> str:
    """The currency of a money field's input: the one typed with the amount (``12.50 EUR``, ``€12.50``) unless the
    currency list was changed from what the form showed (the field's default currency, or the record's) to
    another — then the list's. ``ValueError`` (translated) when the typed and the picked currencies differ: which
    one was meant cannot be told, and either would store an amount in a currency not asked for."""
    picked = select.data or ""
    shown = select.object_data or d.default_currency()
    typed = d.typed_currency(text)
    if not typed:
        return picked or d.default_currency()
    if picked and picked != shown and picked != typed:
        raise ValueError(_("The amount is typed in %(typed)s but %(picked)s is picked in the currency list: pick "
                           "%(typed)s, or type the amount without its currency.", typed=typed, picked=picked))
    return typed


def _form_field(d: CustomFieldDef, current):
    """The WTForms field of definition ``d`` (``current``: the record's value, kept among the choices)."""
    label, description = d.label, d.help
    checks = [_Check(d, current)]  # empty values too: "required" is one of the definition's rules
    render = {"required": True} if d.required and d.type not in ("checkbox", "multi_picklist") else {}
    kwargs = {"description": description, "validators": checks, "render_kw": render}
    if d.type == "text":
        return StringField(label, render_kw={**render, "maxlength": d.max_length}, validators=checks,
                           description=description)
    if d.type in ("number", "money"):
        return StringField(label, render_kw={**render, "inputmode": "decimal"}, validators=checks,
                           description=description)
    if d.type == "date":
        return StringField(label, render_kw={**render, "type": "date"}, validators=checks, description=description)
    if d.type in PICKLIST_TYPES:
        from core.crm.picklists import picklist_choices

        include = current if isinstance(current, str) else None
        choices = picklist_choices(d.picklist, include=include)
        if isinstance(current, list):
            known = {code for code, _label in choices}
            choices += [(code, d.option_label(code)) for code in current if code not in known]
        if d.type == "picklist":
            return SelectField(label, choices=[("", "—"), *choices], validate_choice=False, **kwargs)
        return MultiCheckboxField(label, choices=choices, validate_choice=False, **kwargs)
    if d.type == "lookup":
        return ReferenceField(label, suggest=LOOKUP_SUGGEST[d.rules.get("target", "customer")], **kwargs)
    return BooleanField(label, description=description, validators=checks)


def extend_form(form_class, object_name: str, record=None):
    """A subclass of ``form_class`` with one field per active custom field of ``object_name`` (named
    ``cf_<key>``; a money field adds ``cf_<key>__currency``). Its ``custom_field_names`` lists them in order.
    """
    current = custom_fields.get_values(record) if record is not None else {}
    attrs, names = {}, []
    for d in custom_fields.definitions(object_name):
        attrs[PREFIX + d.key] = _form_field(d, current.get(d.key))
        names.append(PREFIX + d.key)
        if d.type == "money":
            codes = sorted(custom_fields._currencies())
            held = current.get(d.key)
            if held is not None and held.currency not in codes:
                codes.append(held.currency)
            attrs[PREFIX + d.key + CURRENCY_SUFFIX] = SelectField(
                _l("Currency"), choices=[(c, c) for c in codes], default=d.default_currency(), validate_choice=False)
    attrs["custom_field_names"] = tuple(names)
    attrs["custom_object"] = object_name
    return type(form_class.__name__ + "WithCustomFields", (form_class,), attrs)


def form_data(object_name: str, record) -> dict:
    """The ``data`` that fills the custom fields of a form from ``record`` (``{}`` for a new record)."""
    if record is None:
        return {PREFIX + d.key + CURRENCY_SUFFIX: d.default_currency()
                for d in custom_fields.definitions(object_name) if d.type == "money"}
    values = custom_fields.get_values(record)
    data = {}
    for d in custom_fields.definitions(object_name):
        value = values.get(d.key)
        name = PREFIX + d.key
        if d.type == "money":
            data[name] = custom_fields._plain(value.amount) if value is not None else ""
            data[name + CURRENCY_SUFFIX] = value.currency if value is not None else d.default_currency()
        elif d.type == "number":
            data[name] = custom_fields._plain(value) if value is not None else ""
        elif d.type == "date":
            data[name] = value.isoformat() if value is not None else ""
        elif d.type == "lookup":
            label = custom_fields.lookup_labels(d.rules.get("target", "customer"), [value]).get(value) if value else None
            data[name] = f"{label} #{value}" if value and label else (f"#{value}" if value else "")
        elif d.type == "checkbox":
            data[name] = bool(value)
        elif d.type == "multi_picklist":
            data[name] = value or []
        else:
            data[name] = value if value is not None else ""
    return data


def form_values(form) -> dict:
    """``{key: value}`` of a validated form's custom fields (for :func:`core.crm.custom_fields.set_values`)."""
    out = {}
    for name in getattr(form, "custom_field_names", ()):
        out[name[len(PREFIX):]] = getattr(getattr(form, name), "value", None)
    return out


def apply(form, record, user) -> bool:
    """Store a validated form's custom values on ``record``; ``False`` (with the errors on the fields)
    when a value was refused after all."""
    try:
        custom_fields.set_values(record, form_values(form), user=user)
    except custom_fields.CustomFieldErrors as exc:
        for key, message in exc.errors.items():
            field = getattr(form, PREFIX + key, None)
            if field is not None:
                field.errors = [*field.errors, message]
        return False
    return True


# -- the administrator's form -------------------------------------------------------------------------
def _optional_number(label):
    return StringField(label, validators=[Optional(), Length(max=32)])


class CustomFieldForm(FlaskForm):
    key = StringField(
        _l("Key"), validators=[Required(), Length(max=32)],
        description=_l("Lower-case letters, digits and _; starts with a letter. Used by the API, import and "
                       "export; it cannot change later."),
    )
    type = SelectField(_l("Type"), choices=[(t, TYPE_LABELS[t]) for t in TYPES], default="text")
    label_zh_CN = StringField(_l("Label (简体中文)"), validators=[Optional(), Length(max=128)])
    label_en = StringField(_l("Label (English)"), validators=[Optional(), Length(max=128)])
    label_zh_TW = StringField(_l("Label (繁體中文)"), validators=[Optional(), Length(max=128)])
    help_zh_CN = StringField(_l("Help text (简体中文)"), validators=[Optional(), Length(max=500)])
    help_en = StringField(_l("Help text (English)"), validators=[Optional(), Length(max=500)])
    help_zh_TW = StringField(_l("Help text (繁體中文)"), validators=[Optional(), Length(max=500)])
    required = BooleanField(_l("Required"))
    list_column = BooleanField(_l("Show as a column of the list"))
    active = BooleanField(_l("Active"), default=True)
    sort = IntegerField(_l("Order"), validators=[Optional(), NumberRange(min=0, max=100000)], default=100)
    minimum = _optional_number(_l("Minimum"))
    maximum = _optional_number(_l("Maximum"))
    decimals = IntegerField(_l("Decimal places"), validators=[Optional(), NumberRange(min=0, max=6)])
    max_length = IntegerField(
        _l("Maximum length"), validators=[Optional(), NumberRange(min=1, max=TEXT_MAX)],
        description=_l("Characters; 255 when empty."),
    )
    regex = StringField(
        _l("Pattern (regular expression)"), validators=[Optional(), Length(max=300)],
        description=_l("The whole value must match, e.g. [A-Z]{2}\\d{6}."),
    )
    regex_message_zh_CN = StringField(_l("Message when the pattern does not match (简体中文)"),
                                      validators=[Optional(), Length(max=200)])
    regex_message_en = StringField(_l("Message when the pattern does not match (English)"),
                                   validators=[Optional(), Length(max=200)])
    regex_message_zh_TW = StringField(_l("Message when the pattern does not match (繁體中文)"),
                                      validators=[Optional(), Length(max=200)])
    date_min = DateField(_l("Earliest date"), validators=[Optional()])
    date_max = DateField(_l("Latest date"), validators=[Optional()])
    currency = SelectField(_l("Default currency"), validate_choice=False)
    target = SelectField(_l("Records of"), choices=[(t, LOOKUP_LABELS[t]) for t in LOOKUP_TARGETS], default="customer")
    options = TextAreaField(
        _l("Options"), validators=[Optional(), Length(max=20000)],
        description=_l("One per line: code | 简体中文 | English | 繁體中文. A line you remove is deactivated: "
                       "records keep the value."),
    )

    #: the field being edited already has options (an empty text then keeps them)
    existing_options = False

    def validate_key(self, field):
        field.data = (field.data or "").strip()
        if not KEY_PATTERN.match(field.data):
            raise ValidationError(_l("Lower-case letters, digits and _, starting with a letter, at most 32."))

    def validate_regex(self, field):
        if field.data:
            try:
                re.compile(field.data)
            except re.error as exc:
                raise ValidationError(_l("Not a valid regular expression: %(error)s", error=str(exc))) from None

    def _number(self, field):
        if field.data and custom_fields._decimal(field.data) is None:
            raise ValidationError(_l("“%(value)s” is not a number.", value=field.data))

    validate_minimum = validate_maximum = _number

    def validate_date_max(self, field):
        if field.data and self.date_min.data and field.data < self.date_min.data:
            raise ValidationError(_l("The latest date is before the earliest."))

    def validate(self, extra_validators=None):
        ok = super().validate(extra_validators)
        if not any((getattr(self, f"label_{lang}").data or "").strip() for lang in LABEL_LANGUAGES):
            self.label_en.errors = [*self.label_en.errors, _("Give the field a label in at least one language.")]
            ok = False
        if self.type.data in PICKLIST_TYPES:
            options, error = parse_options(self.options.data or "")
            if not error and not options and not self.existing_options:
                error = _("A picklist needs at least one option.")
            if error:
                self.options.errors = [*self.options.errors, error]
                ok = False
        low, high = custom_fields._decimal(self.minimum.data), custom_fields._decimal(self.maximum.data)
        if ok and low is not None and high is not None and high < low:
            self.maximum.errors.append(_("The maximum is below the minimum."))
            ok = False
        return ok

    def labels(self) -> dict:
        return {lang: getattr(self, f"label_{lang}").data.strip() for lang in LABEL_LANGUAGES
                if (getattr(self, f"label_{lang}").data or "").strip()}

    def help_texts(self) -> dict:
        return {lang: getattr(self, f"help_{lang}").data.strip() for lang in LABEL_LANGUAGES
                if (getattr(self, f"help_{lang}").data or "").strip()}

    def regex_messages(self) -> dict:
        """The pattern's message per language, as the labels: a language left empty falls back (English, then any;
        :func:`core.crm.custom_fields._pick`)."""
        return {lang: getattr(self, f"regex_message_{lang}").data.strip() for lang in LABEL_LANGUAGES
                if (getattr(self, f"regex_message_{lang}").data or "").strip()}

    def rules(self) -> dict:
        kind, rules = self.type.data, {}
        if kind in ("number", "money"):
            for name, field in (("min", self.minimum), ("max", self.maximum)):
                value = custom_fields._decimal(field.data)
                if value is not None:
                    rules[name] = custom_fields._plain(value)
        if kind in ("number", "money") and self.decimals.data is not None:
            rules["decimals"] = int(self.decimals.data)
        if kind == "money" and self.currency.data:
            rules["currency"] = self.currency.data
        if kind == "text":
            if self.max_length.data:
                rules["max_length"] = int(self.max_length.data)
            if self.regex.data:
                rules["regex"] = self.regex.data
                if self.regex_messages():
                    rules["regex_message"] = self.regex_messages()
        if kind == "date":
            if self.date_min.data:
                rules["date_min"] = self.date_min.data.isoformat()
            if self.date_max.data:
                rules["date_max"] = self.date_max.data.isoformat()
        if kind == "lookup":
            rules["target"] = self.target.data if self.target.data in LOOKUP_TARGETS else "customer"
        return rules

    def fill(self, row) -> None:
        """Fill the form from an existing definition (GET of the edit page)."""
        self.key.data, self.type.data = row.key, row.type
        for lang in LABEL_LANGUAGES:
            getattr(self, f"label_{lang}").data = (row.labels or {}).get(lang, "")
            getattr(self, f"help_{lang}").data = (row.help or {}).get(lang, "")
        self.required.data, self.list_column.data, self.active.data = row.required, row.list_column, row.active
        self.sort.data = row.sort
        rules = row.rules or {}
        self.minimum.data, self.maximum.data = rules.get("min", ""), rules.get("max", "")
        self.decimals.data = rules.get("decimals")
        self.max_length.data = rules.get("max_length")
        self.regex.data = rules.get("regex", "")
        messages = rules.get("regex_message") or {}
        for lang in LABEL_LANGUAGES:  # (a message stored as one text: the English box)
            text = messages.get(lang, "") if isinstance(messages, dict) else messages if lang == "en" else ""
            getattr(self, f"regex_message_{lang}").data = text
        from datetime import date

        self.date_min.data = date.fromisoformat(rules["date_min"]) if rules.get("date_min") else None
        self.date_max.data = date.fromisoformat(rules["date_max"]) if rules.get("date_max") else None
        self.currency.data = rules.get("currency", "")
        self.target.data = rules.get("target", "customer")


_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def parse_options(text: str):
    """``([(code, {"zh_CN", "en", "zh_TW"})], error)`` of the options text, one option per line."""
    options, seen = [], set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.replace("｜", "|").split("|")]
        code = parts[0]
        if not _CODE.match(code):
            return [], _("Line %(line)d: a code has letters, digits, - and _ only (at most 64).", line=number)
        if code in seen:
            return [], _("Line %(line)d: the code “%(code)s” appears twice.", line=number, code=code)
        seen.add(code)
        names = (parts + ["", "", ""])[1:4]
        labels = {lang: name[:255] for lang, name in zip(LABEL_LANGUAGES, names, strict=True) if name}
        options.append((code, labels or {"en": code}))
    return options, None


def options_text(rows) -> str:
    """The options text of picklist values (the active ones)."""
    lines = []
    for row in rows:
        if row.active:
            labels = row.labels or {}
            parts = [row.code, *(labels.get(lang, "") for lang in LABEL_LANGUAGES)]
            lines.append(" | ".join(parts).rstrip(" |"))
    return "\n".join(lines)
