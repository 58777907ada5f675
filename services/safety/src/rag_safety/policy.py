"""Safety policies: the default one from the flat settings, named ones from `SAFETY_POLICIES`.

A request names a policy (`policy`, e.g. its API key's) or a tenant (`tenant`, mapped by
`SAFETY_TENANT_POLICIES`); otherwise the default policy applies. A named policy overrides only what
it sets. A request naming an unknown policy is refused (422): the gateway stores a key's policy name
without knowing this service's policies, so the first use of a mistyped name is where it shows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rag_common.errors import NotFound, UnprocessableContent

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

    @property
    def pii_reversible(self) -> bool:
        """Numbered placeholders and the mapping back to the values: the asker can get them back."""
        return self.pii_placeholders == "numbered" and self.return_mapping

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
            pii_placeholders="numbered" if settings.pii_reversible else settings.pii_placeholders,
            return_mapping=settings.pii_reversible or settings.return_mapping,
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
            **_reversible_changes(spec.pii_reversible),
        }
        return dataclasses.replace(self, name=name, **{k: v for k, v in changes.items() if v is not None})


def _reversible_changes(reversible: bool | None) -> dict[str, Any]:
    if reversible is None:
        return {}
    return {"pii_placeholders": "numbered" if reversible else "type", "return_mapping": reversible}


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
        """The named policy, else the tenant's, else the default; naming an unknown one is a 422."""
        if policy is not None:
            if policy not in self.policies:
                raise UnprocessableContent(
                    f"No safety policy named {policy!r}: the API key (or request) names a policy "
                    "this safety service does not define in SAFETY_POLICIES.",
                    extra={"policy": policy},
                )
            return self.policies[policy]
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
        pii_reversible=policy.pii_reversible,
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
