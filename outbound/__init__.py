"""Everything the gateway sends: decide, render, compose, queue and deliver mail.

Kept apart from `gateway/` so that the core pipeline only inserts outbox rows and never
talks to templates, MIME or SMTP itself (DESIGN §1, §8).
"""
