"""The gateway core: configuration, database, directory, tickets, pipeline, jobs and CLI.

Mail enters through :mod:`inbound` (SMTP, IMAP, pipe) into the durable spool, the
pipeline here turns it into tickets, and :mod:`outbound` delivers what we send.
See ``docs/architecture.md`` for the flow.
"""
