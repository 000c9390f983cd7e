"""Villagers' own recordings (采集/征集): resumable uploads, processing, moderation, upstream to the county."""
