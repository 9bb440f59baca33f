"""The policy a running gateway uses: loaded once per process from the settings.

``serve`` loads it at start so that a bad file stops the gateway with a clear
error; workers load it on first use.  A changed file takes effect on restart.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from gateway.config import Settings
from rules.issue_types import DEFAULT_ISSUE_TYPES, IssueTypes, load_issue_types
from rules.policy import DEFAULT_POLICY, Policy, load_policy

__all__ = ["current_issue_types", "current_policy", "support_aliases"]


@lru_cache(maxsize=8)
def _load(path: Path) -> Policy:
    return load_policy(path)


@lru_cache(maxsize=32)
def _resolved(name: str, cwd: str) -> Path:
    """A configured file name as an absolute path (resolving costs syscalls per call)."""
    return (Path(cwd) / name).resolve()


def current_policy(settings: Settings) -> Policy:
    """The validated policy named by ``rules_policy`` (raises PolicyError, a ConfigError)."""
    return _load(_resolved(str(settings.rules_policy or DEFAULT_POLICY), os.getcwd()))


def current_issue_types(settings: Settings) -> IssueTypes:
    """The validated issue-type keywords named by ``rules_issue_types``."""
    return load_issue_types(_resolved(str(settings.rules_issue_types or DEFAULT_ISSUE_TYPES),
                                      os.getcwd()))


def support_aliases(settings: Settings) -> tuple[str, ...]:
    """Local parts SMTP accepts besides the support address: the policy's product and
    category addresses and the emergency address (their domain must still be ours)."""
    spec = current_policy(settings).spec
    names = [a for p in spec.products.values() for a in p.addresses]
    names += [a for c in spec.categories.values() for a in c.addresses]
    if settings.emergency_address:
        names.append(settings.emergency_address)
    return tuple(sorted({n.strip().lower().rpartition("@")[0] or n.strip().lower()
                         for n in names}))
