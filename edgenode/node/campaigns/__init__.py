"""Campaigns with voting (点赞/投票): offline votes, per-terminal daily limits, county-wide rankings."""
