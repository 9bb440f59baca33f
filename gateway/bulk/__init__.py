"""Bulk mail: quarterly feature mail, announcements, unsubscribe, usage import, the catalogue."""
