"""The API tokens page: a signed-in user's own tokens (create, revoke); every user's for token admins."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import Length

from core.crm.api_auth import create_token, revoke_token
from core.extensions import db
from core.validators import Required

MANAGE_TOKENS = "core.api_tokens.manage"


class TokenForm(FlaskForm):
    name = StringField(_l("Name"), validators=[Required(), Length(max=128)])


class RevokeForm(FlaskForm):
    pass


def _page(form: TokenForm, secret: str | None = None, status: int = 200):
    from core.crm.models import ApiToken

    show_all = request.args.get("all") == "1" and current_user.can(MANAGE_TOKENS)
    stmt = select(ApiToken).order_by(ApiToken.id.desc())
    if not show_all:
        stmt = stmt.where(ApiToken.user_id == current_user.id)
    tokens = db.session.execute(stmt).scalars().all()
    return (
        render_template(
            "core/crm/api_tokens.html",
            tokens=tokens,
            form=form,
            revoke_form=RevokeForm(),
            secret=secret,
            show_all=show_all,
            can_manage=current_user.can(MANAGE_TOKENS),
        ),
        status,
    )


def tokens():
    form = TokenForm()
    if request.method == "GET":
        return _page(form)
    if not form.validate_on_submit():
        return _page(form, status=400)
    token, secret = create_token(current_user, form.name.data.strip())
    db.session.commit()
    flash(_("Token “%(name)s” created. Copy it now: it is not shown again.", name=token.name), "success")
    return _page(TokenForm(formdata=None), secret=secret, status=201)


def revoke(token_id: int):
    from core.crm.models import ApiToken

    token = db.session.get(ApiToken, token_id)
    if token is None or (token.user_id != current_user.id and not current_user.can(MANAGE_TOKENS)):
        abort(404)
    revoke_token(token)
    db.session.commit()
    flash(_("Token “%(name)s” revoked.", name=token.name), "success")
    back = {"all": "1"} if token.user_id != current_user.id else {}
    return redirect(url_for("crm_api.tokens", **back))
