"""County staff login.  Every hub URL except the node-facing API and this login
page needs a logged-in session (``/metrics`` also takes ``hub.metrics_token``)."""

from __future__ import annotations

import hmac

from flask import Blueprint, jsonify, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from edgenode.core.errors import EdgenodeError
from edgenode.hub import staff
from edgenode.hub.web.api import NODE_FACING
from edgenode.hub.web.context import cfg, get_db
from edgenode.core.errors import error_payload

bp = Blueprint("hub_auth", __name__)
csrf = CSRFProtect()
OPEN = NODE_FACING | {"hub_auth.login"}


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired(), Length(max=200)])


def _metrics_token_ok() -> bool:
    token = cfg().hub.metrics_token
    got = request.headers.get("Authorization", "")
    return bool(token) and request.endpoint == "hub_pages.metrics" and hmac.compare_digest(got, f"Bearer {token}")


def init_app(app):
    # The login gate runs before the CSRF check, so an anonymous POST gets 401, not 400.
    @app.before_request
    def require_login():
        if request.endpoint in OPEN or session.get("staff"):
            return None
        if _metrics_token_ok():
            return None
        if request.path.startswith("/api/") or request.path == "/metrics" or request.method != "GET":
            return jsonify(error_payload("E_LOGIN_REQUIRED", "log in as county staff", "请先登录。")), 401
        return redirect(url_for("hub_auth.login", next=request.full_path if request.query_string else request.path))

    csrf.init_app(app)
    from edgenode.hub.web import api
    csrf.exempt(api.bp)  # signed by node keys, not by a browser session


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would make the login page a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("hub_pages.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            ok = staff.authenticate(get_db(), form.username.data, form.password.data,
                                    max_failures=cfg().web.login_max_failures,
                                    lockout_seconds=cfg().web.login_lockout_seconds)
        except EdgenodeError as e:
            ok, error = False, e.zh
        if ok:
            session.clear()
            session.permanent = True
            session["staff"] = form.username.data.strip()
            return redirect(_safe_next(request.args.get("next")))
        error = error or "用户名或密码错误。"
    elif request.method == "POST":
        error = "表单已过期或无效，请重新提交。"
    if not staff.has_staff(get_db()):
        error = error or "还没有县中心账户：请在服务器上运行 edgenode hub set-password 用户名。"
    return render_template("hub/login.html", form=form, error=error), (400 if error and request.method == "POST"
                                                                       else 200)


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("hub_auth.login"))
