"""Villagers' requests ("I want more about …") and feedback on resources, sent upstream as usage events."""
