"""The point's administrator: one account, a scrypt-hashed password, lock-out."""
