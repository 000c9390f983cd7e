"""Signed content bundles: format, minisign signatures, trust store and the one import pipeline."""
