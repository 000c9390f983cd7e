"""The villagers' upload page: resumable (tus-js-client) with JavaScript, a plain form without.

The plain form is for small files (``contrib.form_max_mb``); the app's 1 MB request
limit is lifted for this one view, so CSRF is checked here, after that, rather than
by CSRFProtect before the view (which would read the body as a form under the old limit).
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from edgenode.core.errors import EdgenodeError
from edgenode.node.campaigns import queries as cq
from edgenode.node.contrib import uploads
from edgenode.node.web.auth import csrf
from edgenode.node.web.context import get_db, node

bp = Blueprint("contrib", __name__, template_folder="templates", static_folder="static",
               static_url_path="/contrib/static")
FIELDS = ("title", "credit", "campaign", "consent")


def _page(error: EdgenodeError | None = None, form: dict | None = None, done: bool = False):
    cfg = node().cfg
    return render_template("contrib/upload.html", campaigns=cq.list_campaigns(get_db(), current=True),
                           form=form or {}, error=error, done=done, max_file_mb=cfg["contrib.max_file_mb"],
                           form_max_mb=cfg["contrib.form_max_mb"]), (error.status if error else 200)


@bp.get("/contrib/")
def index():
    return _page(done=request.args.get("done") == "1")


@bp.post("/contrib/form")
@csrf.exempt
def form_upload():
    cfg, db = node().cfg, get_db()
    request.max_content_length = cfg["contrib.form_max_mb"] * uploads.MB + 64 * 1024
    try:
        csrf.protect()
    except RequestEntityTooLarge:
        cap = cfg["contrib.form_max_mb"]
        return _page(error=uploads.fail("E_CONTRIB_TOO_BIG", f"over the plain form's {cap} MB limit",
                                        f"文件太大：不用脚本的表单每个文件不能超过 {cap} MB，请用支持续传的页面。", 413))
    form = {k: (request.form.get(k) or "")[:200] for k in FIELDS}
    f = request.files.get("file")
    try:
        if f is None or not f.filename:
            raise uploads.fail("E_CONTRIB_FIELD", "no file chosen", "请选择要上传的文件。")
        f.stream.seek(0, 2)
        length = f.stream.tell()
        f.stream.seek(0)
        campaigns = {c["id"] for c in cq.list_campaigns(db, current=True)}
        uid = uploads.create(cfg, db, length, {**form, "filename": f.filename}, campaigns=campaigns)
        try:
            uploads.append(cfg, db, uid, 0, f.stream, length)
        except BaseException:
            uploads.terminate(cfg, db, uid)  # a form upload cannot resume: leave nothing behind
            raise
    except EdgenodeError as e:
        return _page(error=e, form=form)
    return _page(done=True)


def init_app(app) -> None:
    from edgenode.node.contrib import tus

    app.register_blueprint(bp)
    app.register_blueprint(tus.bp)
