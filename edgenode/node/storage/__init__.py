"""Storage that never fills up: subscriptions, quota, eviction, pinning, requests and transcoding."""
