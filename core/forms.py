"""The core's forms. Labels are lazily translated; CSRF comes with FlaskForm."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.validators import Email, EqualTo, Length, Optional, Regexp, ValidationError

from core.i18n import LANGUAGES
from core.validators import Required


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[Required(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[Required()])


class LanguageForm(FlaskForm):
    language = SelectField(_l("Language"), choices=list(LANGUAGES.items()))


class AddonActionForm(FlaskForm):
    """Enable/disable buttons of the Apps page (only the CSRF token is needed)."""

    with_dependents = BooleanField(_l("Also disable the apps that depend on it"))


def _language_choices():
    return [("", _l("Instance default"))] + list(LANGUAGES.items())


class UserForm(FlaskForm):
    username = StringField(
        _l("Username"),
        validators=[
            Required(),
            Length(max=64),
            Regexp(r"^[\w.@+-]+$", message=_l("Use letters, digits and . @ + - _ only.")),
        ],
    )
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=128)])
    email = EmailField(_l("Email"), validators=[Optional(), Email(), Length(max=255)])
    language = SelectField(_l("Language"), choices=_language_choices, validate_choice=True)
    roles = SelectMultipleField(_l("Roles"), coerce=int)
    department = SelectField(_l("Department"), choices=[], default="", validate_choice=True)
    active = BooleanField(_l("Active"), default=True)
    password = PasswordField(_l("Password"), validators=[Optional(), Length(min=8, max=128)])
    confirm = PasswordField(
        _l("Repeat password"), validators=[EqualTo("password", message=_l("The passwords differ."))]
    )

    def __init__(self, *args, new_user: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.new_user = new_user

    def validate_password(self, field):
        if self.new_user and not field.data:
            raise ValidationError(_l("A new user needs a password."))


class RoleForm(FlaskForm):
    name = StringField(
        _l("Code"),
        validators=[
            Required(),
            Length(max=64),
            Regexp(r"^[a-z][a-z0-9_]*$", message=_l("Use lower-case letters, digits and _.")),
        ],
    )
    title = StringField(_l("Title"), validators=[Required(), Length(max=128)])
    is_admin = BooleanField(_l("Administrator (every permission)"))
    permissions = SelectMultipleField(_l("Permissions"))


def _scope_choices():
    from core.crm.org import SCOPE_LABELS

    return list(SCOPE_LABELS.items())


def scope_field_name(object_name: str) -> str:
    """The form field holding a role's data scope on ``object_name`` (``crm_lead.lead`` -> ``scope__crm_lead__lead``)."""
    return "scope__" + object_name.replace(".", "__")


def role_form_class(objects):
    """:class:`RoleForm` with one data-scope select per ``(object, label)`` of ``objects``."""
    fields = {
        scope_field_name(name): SelectField(label, choices=_scope_choices, default="own", validate_choice=True)
        for name, label in objects
    }
    return type("RoleScopeForm", (RoleForm,), fields)
