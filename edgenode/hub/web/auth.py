"""County staff login and roles.  Every hub URL except the node-facing API and this login
page needs a logged-in session (``/metrics`` also takes ``hub.metrics_token``).  Every
state-changing request needs the 县级管理员 role (a 查看 account only reads) and goes to the
audit log (``hub/audit.py``), refusals included."""

from __future__ import annotations

import hmac

from flask import Blueprint, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, CSRFProtect
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from edgenode.core.errors import EdgenodeError
from edgenode.hub import audit, staff
from edgenode.hub.web.api import NODE_FACING
from edgenode.hub.web.context import cfg, get_db
from edgenode.hub.web.errors import render_error
from edgenode.core.errors import error_payload

bp = Blueprint("hub_auth", __name__)
csrf = CSRFProtect()
OPEN = NODE_FACING | {"hub_auth.login"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
ANY_ROLE_WRITES = {"hub_auth.logout"}  # a viewer may still log out
ADMIN_PAGES = {"hub_staff.audit_log"}  # pages only administrators may read
CSRF_ZH = ("页面已过期或来源无法验证（安全检查），刚才的操作没有执行。请返回上一页，按 F5 刷新后再提交一次；"
           "如果一直这样，请退出后重新登录。")
VIEWER_ZH = "您的账户是“查看”角色，只能浏览，不能修改。需要修改时，请联系县级管理员。"


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

    @app.before_request
    def require_admin_for_writes():
        if request.endpoint in OPEN or not session.get("staff"):
            return None
        writes = request.method not in SAFE_METHODS and request.endpoint not in ANY_ROLE_WRITES
        if not writes and request.endpoint not in ADMIN_PAGES:
            return None
        g.staff_role = staff.role_of(get_db(), session["staff"])
        if g.staff_role == "admin":
            return None
        if writes:
            audit.record(get_db(), session["staff"], g.staff_role or "", request.endpoint or request.path,
                         target=_target(), detail=audit.form_detail(request.form), outcome="refused")
        return render_error(403, "E_ROLE_VIEWER", "this account may only read", VIEWER_ZH)

    @app.after_request
    def audit_writes(response):
        if (request.method not in SAFE_METHODS and request.endpoint not in OPEN and session.get("staff")
                and g.get("staff_role") == "admin"):
            audit.record(get_db(), session["staff"], "admin", request.endpoint or request.path, target=_target(),
                         detail=audit.form_detail(request.form), outcome=str(response.status_code))
        return response

    @app.errorhandler(CSRFError)
    def csrf_refused(e):
        if request.endpoint == "hub_auth.login":
            form = LoginForm(meta={"csrf": False})
            return render_template("hub/login.html", form=form, error=CSRF_ZH), 400
        return render_error(400, "E_CSRF", "the form's security token is missing or expired", CSRF_ZH)


def _target() -> str:
    """What an action acted on: the URL's node or alert, or the code a form names."""
    parts = [f"{k}={v}" for k, v in (request.view_args or {}).items()]
    return " ".join(parts)


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
        name = form.username.data.strip()
        try:
            ok = staff.authenticate(get_db(), name, form.password.data, max_failures=cfg().web.login_max_failures,
                                    lockout_seconds=cfg().web.login_lockout_seconds,
                                    offset_hours=cfg().hub.utc_offset_hours)
        except EdgenodeError as e:
            ok, error = False, e.zh
            audit.record(get_db(), name, staff.role_of(get_db(), name) or "", "login_locked", outcome=e.code)
        if ok:
            session.clear()
            session.permanent = True
            session["staff"] = name
            session["role"] = staff.role_of(get_db(), name)
            audit.record(get_db(), name, session["role"] or "", "hub_auth.login")
            return redirect(_safe_next(request.args.get("next")))
        if error is None:
            error = "用户名或密码错误。"
            audit.record(get_db(), name[:64], staff.role_of(get_db(), name) or "", "login_failed", outcome="E_LOGIN")
    elif request.method == "POST":
        error = "请填写用户名和密码。"
    if not staff.has_staff(get_db()):
        error = error or "还没有县中心账户：请在服务器上运行 edgenode hub set-password 用户名。"
    return render_template("hub/login.html", form=form, error=error), (400 if error and request.method == "POST"
                                                                       else 200)


@bp.post("/logout")
def logout():
    audit.record(get_db(), session.get("staff", ""), session.get("role") or "", "hub_auth.logout")
    session.clear()
    return redirect(url_for("hub_auth.login"))
