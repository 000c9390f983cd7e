"""The TV (电视) mode: the reading room television\x27s 10-foot pages and screening schedules (展播)."""
