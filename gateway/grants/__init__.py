"""Support access grants (MISSION section 4, issue 6).

A support employee may enter a customer's system only under a grant that one of the
team's authorised users (``can_grant_access``) gave through an emailed activation
link.  The gateway is the system of record for requests, grants and logins:

- :mod:`gateway.grants.tokens`: random activation tokens (hash at rest), CSRF values,
  signed overview links;
- :mod:`gateway.grants.durations`: the offered durations and when each ends;
- :mod:`gateway.grants.service`: request, activate, revoke, check, login;
- :mod:`gateway.grants.overview`: activations of the last six months, logins (views);
- :mod:`gateway.grants.mail`: the activation, granted, revoked and expiring mails;
- :mod:`gateway.grants.expiry`: the expiring-grant notices (a scheduled job).
"""

from __future__ import annotations

__all__: list[str] = []
