"""The support hub (DESIGN §14): what the web pages under ``/hub`` do, without the web.

- :mod:`gateway.hub.sign_in`: one-time sign-in links by mail, rate-limited;
- :mod:`gateway.hub.sessions`: sessions (only the id's hash is stored) and the
  :class:`~gateway.hub.visitor.HubVisitor` they resolve to, from the directory;
- :mod:`gateway.hub.listing` and :mod:`gateway.hub.ticket_view`: which tickets a visitor
  may see and their public history;
- :mod:`gateway.hub.submit`: a reply or a new request becomes a spooled message (source
  ``web``) that the pipeline processes like mail: one way in.

The Starlette routes are :mod:`gateway.web.hub`.
"""
