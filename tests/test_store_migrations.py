"""Schema migrations: applied once through sqlite_utils, pending ones found with plain sqlite3."""

from __future__ import annotations

from pathlib import Path

from modelyard.store import Store, migrations

NAMES = [m.__name__ for m in migrations.MIGRATIONS]


def test_a_new_store_applies_every_migration_in_order(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "m.db")
    assert store.applied_migrations() == NAMES
    store.close()
    reopened = Store.open(tmp_path / "m.db")
    assert reopened.applied_migrations() == NAMES
    reopened.close()


def test_a_migration_missing_from_the_record_is_applied_on_open(tmp_path: Path) -> None:
    """Prevents the plain-sqlite3 check (which keeps sqlite_utils out of an up-to-date server)
    from reporting nothing pending when the record lacks a migration."""
    store = Store.open(tmp_path / "m.db")
    with store.transaction() as conn:
        conn.execute("DROP TABLE presets")
        conn.execute("DROP TABLE control_state")
        conn.execute("DROP INDEX audit_at")
        conn.execute(f"DELETE FROM {migrations.TABLE} WHERE name = 'm004_control'")
    store.close()
    reopened = Store.open(tmp_path / "m.db")
    # every one applied; m004 now after the later ones, which stayed recorded
    assert sorted(reopened.applied_migrations()) == sorted(NAMES)
    assert reopened.query("SELECT count(*) AS n FROM presets")[0]["n"] == 0
    reopened.close()
