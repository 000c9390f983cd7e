"""One exception type for every domain error.

Each error carries a stable machine code (used in the CLI, logs and JSON), an
English message for operators and, where a villager or volunteer may see it, a
Chinese message for the portal.
"""


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
        return {"ok": False, "error": {"code": self.code, "message": self.message, "message_zh": self.zh}}


class ConfigError(EdgenodeError):
    def __init__(self, message: str):
        super().__init__("E_CONFIG", message, zh="配置文件有误：" + message, status=500)


class DatabaseError(EdgenodeError):
    def __init__(self, message: str):
        super().__init__("E_DB_CORRUPT", message, zh="数据库损坏，请联系县中心技术人员。", status=500)


class NotFound(EdgenodeError):
    def __init__(self, message: str = "not found", zh: str = "没有找到这个页面"):
        super().__init__("E_NOT_FOUND", message, zh=zh, status=404)
