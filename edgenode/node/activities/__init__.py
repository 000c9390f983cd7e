"""Activities at the service point: publishing, booking with pickup codes, check-in, privacy purge."""
