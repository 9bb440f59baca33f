"""The receiving edge: SMTP intake, IMAP polling, pipe ingest, the durable spool, parsing.

Everything here turns bytes from the outside world into durable spool rows and,
later, into a :class:`inbound.parsing.message.ParsedMail` the gateway pipeline can trust
never to raise. See ``docs/architecture.md`` for the flow.
"""
