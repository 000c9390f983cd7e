"""node/portal"""
