"""Signing in and out."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_user, logout_user
from sqlalchemy import func, select

from core.app import public
from core.extensions import db
from core.forms import LoginForm
from core.models import User
from core.security import record_attempt, throttled_for, verify_password
from core.timeutil import utcnow
from core.views.main import _safe_next

bp = Blueprint("auth", __name__)


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        username = form.username.data.strip()
        wait = throttled_for(username.lower())
        if wait:
            flash(
                _("Too many failed sign-ins for this account. Try again in %(minutes)d minutes.", minutes=wait),
                "error",
            )
            status = 429
        else:
            user = db.session.execute(select(User).where(func.lower(User.username) == username.lower())).scalar()
            ok = user is not None and user.active and verify_password(user.password_hash, form.password.data)
            record_attempt(username.lower(), request.remote_addr, ok)
            if ok:
                user.last_login_at = utcnow()
                db.session.commit()
                login_user(user)
                return redirect(_safe_next(request.args.get("next")))
            db.session.commit()
            flash(_("Wrong username or password."), "error")
            status = 401
    elif request.method == "POST":
        status = 400
    return render_template("core/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))
