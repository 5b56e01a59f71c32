"""Validators the forms of the core and of addons share."""

from wtforms.validators import DataRequired, StopValidation

from core.crm.normalise import strip_invisible


class Required(DataRequired):
    """WTForms' ``DataRequired``, for which a text made only of spaces and invisible characters (zero-width
    spaces, byte order marks…: see :func:`core.crm.normalise.strip_invisible`) is missing too: a customer named
    ``"\\u200b"`` would show as a blank name everywhere, and no search could find it."""

    def __call__(self, form, field):
        if isinstance(field.data, str) and field.data and not strip_invisible(field.data):
            message = self.message if self.message is not None else field.gettext("This field is required.")
            field.errors[:] = []
            raise StopValidation(message)
        super().__call__(form, field)
