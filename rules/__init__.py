"""Entitlement and SLA rules: policy files (TOML) and the engine that reads them.

``policy`` validates a policy file, ``calendar`` does business-time arithmetic,
``engine.decide`` is the pure decision (who, team add-ons, product, language, time →
tier, target, calendar, queue, language, due time, explanation), ``classify`` finds
product, category and Japanese script, ``intake.decide_for`` asks the engine about a
directory sender (the pipeline's ``apply-rules`` step and ``gateway rules explain``).
"""
