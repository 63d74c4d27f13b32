"""The profiles service: read, write and activate profiles.

Profiles live as YAML files (``ProfileFiles``); the name of the active one lives in the store
(``control_state``), so the server and the CLI agree on it. At start the active profile is
``settings.profile`` (``MODELYARD_PROFILE`` / ``--profile``) when given, else the stored one.

Activation plans first (``plan_activation``, pure) and then acts through the catalog (enabled
flags) and the fleet (create, start, stop), in the plan's order. One activation runs at a
time; a second waits for the first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from modelyard.catalog.catalog import Catalog
from modelyard.errors import (
    ConfigError,
    Conflict,
    InvalidReference,
    ModelyardError,
    NotFound,
    ValidationFailed,
)
from modelyard.events import EventBus
from modelyard.fleet.instance import InstanceView
from modelyard.fleet.memory import MemoryInventory
from modelyard.profiles.deployment import Deployment, Hardware, Override, hardware_of, resolve
from modelyard.profiles.files import ProfileFiles, check_name
from modelyard.profiles.plan import ActivationPlan, CurrentInstance, Persona, plan_activation
from modelyard.profiles.presets import Presets
from modelyard.profiles.schema import Profile, check_profile, normalise
from modelyard.routing.eviction import AdmissionLimits
from modelyard.routing.fallback import ProfileRouting
from modelyard.settings import Settings
from modelyard.store import Store
from modelyard.store.control import control_value, set_control_value

ACTIVE_KEY = "active_profile"


class FleetControl(Protocol):
    """What activation needs of the fleet."""

    def instances(self) -> Sequence[InstanceView]: ...

    async def create(
        self, model_id: str, config: dict[str, Any], count: int, *, actor: str
    ) -> Sequence[InstanceView]: ...

    async def start_instance(self, instance_id: str, *, actor: str) -> InstanceView: ...

    async def stop_instance(self, instance_id: str, *, actor: str) -> InstanceView: ...


@dataclass(frozen=True)
class ProfileEntry:
    """One profile as read from its file: valid (``profile`` set) or not (``problems``)."""

    name: str
    version: str
    data: Any
    profile: Profile | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActivationResult:
    """What activation did: the plan, what was created, and what failed (with why)."""

    plan: ActivationPlan
    created: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = field(default=())
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "created": list(self.created),
            "failed": [{"target": t, "error": e} for t, e in self.failed],
            "dry_run": self.dry_run,
        }


class ProfileService:
    """Profiles over their folder, the catalog and (when the server runs one) the fleet."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        catalog: Catalog,
        presets: Presets,
        events: EventBus,
        fleet: FleetControl | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._catalog = catalog
        self._presets = presets
        self._events = events
        self.fleet = fleet
        self.files = ProfileFiles(profiles_folder(settings))
        self._activating = asyncio.Lock()
        # Told the routing part of each profile that becomes active (the gateway's apply_profile).
        self.routing_listener: Callable[[ProfileRouting | None], None] | None = None

    def active_routing(self) -> ProfileRouting | None:
        """The routing part of the active profile, or None when none is active or it is not
        valid any more. Blocks on the store and the profile file."""
        name = self.active_name()
        if name is None:
            return None
        try:
            profile = self.read(name).profile
        except NotFound:
            return None
        return routing_of(profile) if profile is not None else None

    # -- reading ----------------------------------------------------------------------------

    def names(self) -> list[str]:
        self.files.ensure_examples()
        return self.files.names()

    def read(self, name: str) -> ProfileEntry:
        """One profile, checked against the catalog. Raises ProfileNotFound."""
        self.files.ensure_examples()
        raw = self.files.read(name)
        if raw.error is not None:
            return ProfileEntry(name, raw.version, None, None, (raw.error,))
        try:
            profile = self._check(raw.data, origin=f"profile '{name}'")
        except ValidationFailed as exc:
            problems = tuple(exc.extra.get("problems", [exc.message]))
            return ProfileEntry(name, raw.version, raw.data, None, problems)
        if profile.name != name:
            problem = f"name: '{profile.name}' differs from the file name '{name}'"
            return ProfileEntry(name, raw.version, raw.data, None, (problem,))
        return ProfileEntry(name, raw.version, raw.data, profile)

    def get(self, name: str) -> tuple[Profile, str]:
        """A valid profile and its version. Raises ProfileNotFound, ValidationFailed (a bad
        name), or Conflict when the file is not valid now (the request was fine: the file, or
        the catalog it names models of, has to change first)."""
        entry = self.read(name)
        if entry.profile is None:
            problems = list(entry.problems)
            raise Conflict(
                f"profile '{name}' is not valid: " + "; ".join(problems),
                param=problems[0].split(":", 1)[0] if problems else "profile",
                problems=problems,
            )
        return entry.profile, entry.version

    def active_name(self) -> str | None:
        """The active profile's name: the stored one, else ``settings.profile``."""
        stored = control_value(self._store, ACTIVE_KEY)
        if stored is not None:
            return stored.value if isinstance(stored.value, str) else None
        return self._settings.profile

    # -- writing ----------------------------------------------------------------------------

    def create(self, data: Any, *, actor: str) -> tuple[Profile, str]:
        """Check ``data`` and write a new profile. Raises ValidationFailed (every problem
        named), Conflict (the name is taken)."""
        profile = self._check(data, origin="profile")
        self.files.ensure_examples()
        _, version = self.files.write(profile.name, profile.to_yaml_data(), create=True)
        self._audit(actor, "profile.create", profile.name, None, profile.to_yaml_data())
        self._events.publish("profile.changed", {"name": profile.name, "action": "create"})
        return profile, version

    def update(
        self, name: str, data: Any, *, actor: str, expected_version: str | None = None
    ) -> tuple[Profile, str]:
        """Replace ``name``'s content. ``data``'s name, when given, must be ``name``.
        ``expected_version``: land only if the file is still at that version (else Conflict).
        Raises ProfileNotFound, ValidationFailed (InvalidReference for another name than
        ``name``), Conflict."""
        check_name(name)
        data = normalise(data)
        if isinstance(data, dict):
            if data.get("name", name) != name:
                raise InvalidReference(
                    f"name: '{data.get('name')}' differs from the profile '{name}' "
                    "(renaming is create + delete)",
                    param="name",
                )
            data = {**data, "name": name}
        before = self.files.read(name)
        profile = self._check(data, origin=f"profile '{name}'")
        _, version = self.files.write(
            name, profile.to_yaml_data(), expected_version=expected_version, must_exist=True
        )
        self._audit(actor, "profile.update", name, before.data, profile.to_yaml_data())
        self._events.publish("profile.changed", {"name": name, "action": "update"})
        return profile, version

    def delete(self, name: str, *, actor: str, expected_version: str | None = None) -> None:
        """Remove a profile. Raises ProfileNotFound, Conflict (the active one, or changed)."""
        before = self.files.read(name)
        if self.active_name() == name:
            raise Conflict(f"profile '{name}' is active; activate another first", param="name")
        self.files.delete(name, expected_version=expected_version)
        self._audit(actor, "profile.delete", name, before.data, None)
        self._events.publish("profile.changed", {"name": name, "action": "delete"})

    # -- activating -------------------------------------------------------------------------

    def plan(self, name: str, instances: Sequence[InstanceView] = ()) -> ActivationPlan:
        """What activating ``name`` would change given the fleet's ``instances`` (read them on
        the event loop: the fleet is not thread-safe). Blocks on the store; raises
        ProfileNotFound, ValidationFailed, Conflict (the file is not valid)."""
        profile, _ = self.get(name)
        enabled = {m.id: m.enabled for m in self._catalog.models()}
        prompts = {p.name: p.prompt for p in self._presets.all()}
        return plan_activation(profile, enabled, [_current(v) for v in instances], prompts)

    async def activate(self, name: str, *, actor: str, dry_run: bool = False) -> ActivationResult:
        """Make ``name`` the active profile and bring models and instances in line with it.

        Blocks until every start in the plan has finished (ready or failed). A step that
        fails is reported in ``failed`` and the rest still run; the profile becomes active
        either way. Raises ProfileNotFound, ValidationFailed or Conflict (the file is not valid)
        before changing anything.
        """
        async with self._activating:
            instances = self.fleet.instances() if self.fleet is not None else []
            plan = await asyncio.to_thread(self.plan, name, instances)
            if dry_run:
                return ActivationResult(plan, dry_run=True)
            failed: list[tuple[str, str]] = []
            created: list[str] = []
            await asyncio.to_thread(self._set_enabled, plan.enable, True, actor, failed)
            start = list(plan.start)
            if self.fleet is not None:
                for new in plan.create:
                    config = _config(new.persona)
                    try:
                        views = await self.fleet.create(new.model_id, config, 1, actor=actor)
                    except ModelyardError as exc:
                        failed.append((new.model_id, exc.message))
                        continue
                    ids = [v.id for v in views]
                    created += ids
                    if new.start:
                        start += ids
                await self._each(self.fleet.start_instance, start, actor, failed)
                await self._each(self.fleet.stop_instance, list(plan.stop), actor, failed)
            await asyncio.to_thread(self._set_enabled, plan.disable, False, actor, failed)
            previous = self.active_name()
            await asyncio.to_thread(self._set_active, name, previous, actor)
            if self.routing_listener is not None:
                profile, _ = await asyncio.to_thread(self.get, name)
                self.routing_listener(routing_of(profile))
        result = ActivationResult(plan, tuple(created), tuple(failed))
        self._events.publish(
            "profile.activated", {"name": name, "previous": previous, **result.to_dict()}
        )
        return result

    async def activate_at_start(self) -> ActivationResult | None:
        """Activate ``settings.profile`` (``MODELYARD_PROFILE`` / ``--profile``) when given;
        otherwise do nothing (the fleet brings back what was running). Call after the fleet
        has started. Raises ConfigError when that profile is missing or not valid."""
        name = self._settings.profile
        if name is None:
            return None
        try:
            return await self.activate(name, actor="startup")
        except (NotFound, ValidationFailed, Conflict) as exc:
            raise ConfigError(f"--profile {name}: {exc.message}") from None

    async def _each(
        self, action: Any, ids: list[str], actor: str, failed: list[tuple[str, str]]
    ) -> None:
        for instance_id in ids:
            try:
                await action(instance_id, actor=actor)
            except ModelyardError as exc:
                failed.append((instance_id, exc.message))

    def _set_enabled(
        self, ids: Sequence[str], value: bool, actor: str, failed: list[tuple[str, str]]
    ) -> None:
        for model_id in ids:
            try:
                self._catalog.set_overrides(model_id, actor=actor, enabled=value)
            except ModelyardError as exc:
                failed.append((model_id, exc.message))

    def _set_active(self, name: str, previous: str | None, actor: str) -> None:
        with self._store.transaction() as conn:
            set_control_value(conn, ACTIVE_KEY, name)
            self._store.audit(
                conn, actor=actor, action="profile.activate", target=name, old=previous, new=name
            )

    # -- deployment -------------------------------------------------------------------------

    def deployment(self, hardware: Hardware, profile: Profile | None = None) -> Deployment:
        """The deployment for ``hardware``: suggestion, then config, then profile overrides."""
        config = self._settings.deployment
        layer = None
        if profile is not None and profile.deployment is not None:
            over = profile.deployment
            layer = Override(over.profile, over.memory_budget_bytes, over.max_models_loaded)
        base = Override(config.profile, config.memory_budget_bytes, config.max_models_loaded)
        return resolve(hardware, base, layer)

    def active_deployment(self, hardware: Hardware) -> tuple[Deployment, str | None]:
        """The deployment under the active profile, and that profile's name (blocking: reads
        the store and the profile's file). A profile that does not read or check adds
        nothing (its problems are shown where profiles are listed)."""
        active = self.active_name()
        profile = None
        if active is not None:
            try:
                profile = self.read(active).profile
            except NotFound:
                profile = None
        return self.deployment(hardware, profile), active

    def admission_limits(self, inventory: MemoryInventory) -> AdmissionLimits:
        """What admission enforces now (``MemoryBudget.govern``'s reader; blocking)."""
        hardware = hardware_of(
            inventory.ram_total_bytes,
            [d.total_bytes for d in inventory.devices],
            inventory.reserve_bytes,
        )
        return self.active_deployment(hardware)[0].limits()

    # -- helpers ----------------------------------------------------------------------------

    def _check(self, data: Any, *, origin: str) -> Profile:
        known = {m.id for m in self._catalog.models()}
        return check_profile(data, known, self._presets.names(), origin=origin)

    def _audit(self, actor: str, action: str, target: str, old: Any, new: Any) -> None:
        with self._store.transaction() as conn:
            self._store.audit(conn, actor=actor, action=action, target=target, old=old, new=new)


def routing_of(profile: Profile) -> ProfileRouting:
    """What the gateway takes from a profile: defaults, fallbacks, balancing strategy."""
    return ProfileRouting(
        auto=profile.defaults.auto,
        tiers={str(tier): model for tier, model in profile.defaults.tiers.items()},
        roles=dict(profile.defaults.roles),
        fallbacks={k: tuple(v) for k, v in profile.fallbacks.items()},
        strategy=profile.load_balancing.strategy if profile.load_balancing.enabled else None,
    )


def profiles_folder(settings: Settings) -> Path:
    """``settings.profiles_dir``, else ``<data_dir>/profiles``."""
    return (settings.profiles_dir or settings.data_dir / "profiles").expanduser()


def _current(view: InstanceView) -> CurrentInstance:
    config = view.config
    persona = Persona(
        display_name=config.display_name,
        system_prompt=config.system_prompt,
        web_search=config.web_search,
        on_demand=config.on_demand,
        idle_ttl=config.idle_ttl,
    )
    running = view.desired == "running" or view.state in ("starting", "ready")
    return CurrentInstance(view.id, view.model_id, persona, running)


def _config(persona: Persona) -> dict[str, Any]:
    return {k: v for k, v in persona.to_dict().items() if v is not None}
