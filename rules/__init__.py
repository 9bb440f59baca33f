"""Entitlement and SLA rules: policy files (TOML) and the engine that reads them.

The walking skeleton decides tier and queue in ``gateway/steps/apply_rules.py``;
the policy engine (tiers per product, calendars, language hours, emergency
windows) lands here and replaces that step's body without changing its contract.
"""
