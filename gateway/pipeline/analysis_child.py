"""Imported once by the analysis pool's forkserver, so that every child starts warm.

Importing this module imports the analysers and runs one analysis of a small sample:
module imports, compiled patterns and caches then live in the forkserver, and each
child forked from it inherits them instead of paying ~0.4 s on its first message
(which, with a child retired after every large message, was most of the cost of the
next small one).  Nothing else imports this module.
"""

from __future__ import annotations

from gateway.memory import return_large_buffers
from gateway.pipeline.analysis_pool import warm_sample
from inbound.parsing.analysis import analyze

return_large_buffers()
analyze(warm_sample())
