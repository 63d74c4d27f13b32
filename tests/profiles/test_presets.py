"""System-prompt presets: built-ins fixed, the user's own added and removed, all audited."""

from __future__ import annotations

import pytest

from modelyard.errors import Conflict, PresetNotFound
from modelyard.profiles.presets import PresetBody, Presets
from modelyard.services import Services


def test_builtins_then_user_presets_with_audit(services: Services) -> None:
    presets = Presets(services.store)
    assert [p.name for p in presets.all()] == ["concise", "researcher", "coder"]
    body = PresetBody(name="pirate", title="Pirate", prompt="Speak like a pirate.")
    presets.add(body, actor="alice")
    assert presets.get("pirate").source == "user"
    with pytest.raises(Conflict):
        presets.add(body, actor="alice")
    with pytest.raises(Conflict):
        presets.add(PresetBody(name="coder", title="x", prompt="y"), actor="alice")
    with pytest.raises(Conflict):
        presets.remove("concise", actor="alice")
    presets.remove("pirate", actor="bob")
    with pytest.raises(PresetNotFound):
        presets.remove("pirate", actor="bob")
    log = services.store.audit_log()
    assert [(e["action"], e["actor"], e["target"]) for e in log] == [
        ("preset.remove", "bob", "pirate"),
        ("preset.add", "alice", "pirate"),
    ]
    assert log[0]["old"]["prompt"] == "Speak like a pirate."
