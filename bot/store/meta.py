"""The meta table: small named values the bot keeps (the database id, the gate's state)."""

from __future__ import annotations

from bot.store.db import Database


class Meta:
    """Reads and writes of the meta table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_meta(self, key: str) -> str | None:
        row = await self.db.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else None

    async def set_meta(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value)
        )
