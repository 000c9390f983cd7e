"""The administrator account table.  Numbered migrations; never edit an applied one."""

AREA = "admin"

MIGRATIONS = [
    (1, "accounts", """
    CREATE TABLE admin_accounts (
        username TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,          -- scrypt$n$r$p$salt$hash (base64), never the password
        generation INTEGER NOT NULL DEFAULT 1, -- bumped on every password change: older sessions end
        failures INTEGER NOT NULL DEFAULT 0,  -- consecutive failed logins
        locked_until REAL NOT NULL DEFAULT 0, -- wall-clock time the lock-out ends
        last_login_at REAL,
        updated_at REAL NOT NULL
    );
    """),
]
