"""One exception type for every domain error.

Each error carries a stable machine code (used in the CLI, logs and JSON), an
English message for operators and, where a villager or volunteer may see it, a
Chinese message for the portal.
"""


# Fixed Chinese per HTTP status, for pages that have no message catalogue (the county hub) and
# as the node's fallback.
STATUS_ZH = {
    400: "请求有误", 401: "请先登录", 403: "没有权限", 404: "没有找到这个页面", 405: "不支持这种操作",
    413: "提交的内容太大", 416: "请求的范围无效", 429: "操作太频繁，请稍后再试", 500: "服务器出了点问题",
}


def error_payload(code: str, message: str, zh: str) -> dict:
    """The one JSON error shape of the node and the hub (``tests/test_web_basic.py`` pins it)."""
    return {"ok": False, "error": {"code": code, "message": message, "message_zh": zh}}


class EdgenodeError(Exception):
    status = 400

    def __init__(self, code: str, message: str, *, zh: str | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.zh = zh or message
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_dict(self) -> dict:
        return error_payload(self.code, self.message, self.zh)

    def cli_message(self) -> str:
        """The CLI's and the logs' one line: ``E_CODE: message``."""
        return f"{self.code}: {self.message}"


class ConfigError(EdgenodeError):
    def __init__(self, message: str):
        super().__init__("E_CONFIG", message, zh="配置文件有误：" + message, status=500)


class DatabaseError(EdgenodeError):
    def __init__(self, message: str):
        super().__init__("E_DB_CORRUPT", message, zh="数据库损坏，请联系县中心技术人员。", status=500)


class NotFound(EdgenodeError):
    def __init__(self, message: str = "not found", zh: str = "没有找到这个页面"):
        super().__init__("E_NOT_FOUND", message, zh=zh, status=404)
