"""Safety policies: the default one from the flat settings, named ones from `SAFETY_POLICIES`.

A request names a policy (`policy`) or a tenant (`tenant`, mapped by `SAFETY_TENANT_POLICIES`);
otherwise the default policy applies. A named policy overrides only what it sets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rag_common.errors import NotFound

from .schemas import CheckView, PolicyView
from .settings import CheckAction, Direction, PiiAction, Placeholders, PolicySpec, Settings

DEFAULT_POLICY = "default"


@dataclass(frozen=True)
class Policy:
    max_text_chars: int
    pii_action: PiiAction
    pii_directions: frozenset[Direction]
    injection_action: CheckAction
    injection_directions: frozenset[Direction]
    injection_threshold: float
    moderation_enabled: bool
    moderation_action: CheckAction
    moderation_directions: frozenset[Direction]
    name: str = DEFAULT_POLICY
    pii_threshold: float = 0.0
    moderation_threshold: float = 0.0
    leak_action: CheckAction = "block"
    leak_directions: frozenset[Direction] = frozenset({"output"})
    leak_min_words: int = 8
    fail_open: bool = False
    pii_placeholders: Placeholders = "type"
    return_mapping: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_text_chars=settings.max_text_chars,
            pii_action=settings.pii_action,
            pii_directions=frozenset(settings.pii_directions),
            pii_threshold=settings.pii_score_threshold,
            injection_action=settings.injection_action,
            injection_directions=frozenset(settings.injection_directions),
            injection_threshold=settings.injection_threshold,
            moderation_enabled=settings.moderation_enabled,
            moderation_action=settings.moderation_action,
            moderation_directions=frozenset(settings.moderation_directions),
            leak_action=settings.leak_action,
            leak_directions=frozenset(settings.leak_directions),
            leak_min_words=settings.leak_min_words,
            fail_open=settings.fail_open,
            pii_placeholders=settings.pii_placeholders,
            return_mapping=settings.return_mapping,
        )

    def overridden_by(self, name: str, spec: PolicySpec) -> Policy:
        """This policy with every field that `spec` sets replaced, renamed `name`."""
        changes: dict[str, Any] = {  # every value is typed by PolicySpec's fields
            "pii_action": spec.pii.action,
            "pii_threshold": spec.pii.threshold,
            "injection_action": spec.injection.action,
            "injection_threshold": spec.injection.threshold,
            "moderation_action": spec.moderation.action,
            "moderation_threshold": spec.moderation.threshold,
            "leak_action": spec.system_prompt_leak.action,
            "leak_min_words": spec.system_prompt_leak.min_words,
            "fail_open": spec.fail_open,
            "pii_placeholders": spec.pii_placeholders,
            "return_mapping": spec.return_mapping,
        }
        return dataclasses.replace(self, name=name, **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class PolicyBook:
    """Every policy by name, and which tenant uses which."""

    policies: dict[str, Policy]
    tenants: dict[str, str]

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyBook:
        base = Policy.from_settings(settings)
        policies = {DEFAULT_POLICY: base}
        policies.update({name: base.overridden_by(name, spec) for name, spec in settings.policies.items()})
        unknown = sorted(set(settings.tenant_policies.values()) - policies.keys())
        if unknown:
            raise ValueError(f"SAFETY_TENANT_POLICIES names undefined policies: {', '.join(unknown)}")
        return cls(policies=policies, tenants=dict(settings.tenant_policies))

    @classmethod
    def single(cls, policy: Policy) -> PolicyBook:
        return cls(policies={policy.name: policy}, tenants={})

    def get(self, name: str) -> Policy:
        try:
            return self.policies[name]
        except KeyError:
            raise NotFound(f"No safety policy named {name!r}.") from None

    def resolve(self, *, policy: str | None, tenant: str | None) -> Policy:
        """The named policy, else the tenant's, else the default."""
        if policy is not None:
            return self.get(policy)
        if tenant is not None and tenant in self.tenants:
            return self.get(self.tenants[tenant])
        return self.get(DEFAULT_POLICY)


def policy_view(policy: Policy) -> PolicyView:
    directions = sorted
    return PolicyView(
        name=policy.name,
        fail_open=policy.fail_open,
        pii_placeholders=policy.pii_placeholders,
        return_mapping=policy.return_mapping,
        checks={
            "pii": CheckView(
                action=policy.pii_action,
                directions=directions(policy.pii_directions),
                threshold=policy.pii_threshold,
            ),
            "injection": CheckView(
                action=policy.injection_action,
                directions=directions(policy.injection_directions),
                threshold=policy.injection_threshold,
            ),
            "moderation": CheckView(
                action=policy.moderation_action if policy.moderation_enabled else "allow",
                directions=directions(policy.moderation_directions) if policy.moderation_enabled else [],
                threshold=policy.moderation_threshold,
            ),
            "system_prompt_leak": CheckView(
                action=policy.leak_action,
                directions=directions(policy.leak_directions),
                min_words=policy.leak_min_words,
            ),
        },
    )
