"""What one process has resolved and built, as of one shared generation, and how it forgets a change."""

from __future__ import annotations

from collections.abc import Iterable

from ..http.client import HttpClient
from ..setting.specs import SettingsSpec
from ..shared.token_storage import DjangoCacheTokenStorage
from ..tokens.manager import TokenManager
from ..tokens.pipeline import TokenFetchPipeline
from ..tokens.pipeline_manager import PipelineTokenManager
from .changes import Changes
from .loading import ClientEntry, Definitions, PipelineEntry

__all__ = ["State", "TokenSource", "close_clients"]

#: What ``get_token_manager`` returns: a manager for OAuth clients, a pipeline adaptor otherwise.
TokenSource = TokenManager | PipelineTokenManager


class State:
    """What this process has resolved and built from one settings spec, as of one shared generation."""

    def __init__(self, settings: SettingsSpec, generation: str | None) -> None:
        self.settings = settings
        self.generation = generation
        self.storage = DjangoCacheTokenStorage(cache_alias=settings.cache, key_prefix=settings.key_prefix)
        self.client_entries: dict[str, ClientEntry] = {}
        self.pipeline_entries: dict[str, PipelineEntry] = {}
        self.definitions: Definitions | None = None  # every definition, read only when asked for
        self.changed = 0  # raised by every change applied (a full read started before one is not kept)
        self.clients: dict[str, HttpClient] = {}
        self.pipelines: dict[str, TokenFetchPipeline] = {}
        self.managers: dict[str, TokenSource] = {}
        # Kept apart from ``managers`` because a client may share its pipeline's name
        # ("partner" authenticated by pipeline "partner"): one name, two objects.
        self.pipeline_managers: dict[str, PipelineTokenManager] = {}
        # Which clients to forget when a pipeline or credential changes, or the client or
        # pipeline a token_exchange client takes its subject token from (it holds that token source).
        self.pipeline_users: dict[str, set[str]] = {}
        self.credential_users: dict[str, set[str]] = {}
        self.subject_users: dict[str, set[str]] = {}

    def remember_client(self, name: str, entry: ClientEntry) -> None:
        if entry.cacheable:
            self.client_entries[name] = entry
        if entry.pipeline:
            self.pipeline_users.setdefault(entry.pipeline, set()).add(name)
        if entry.credential:
            self.credential_users.setdefault(entry.credential, set()).add(name)
        if entry.subject:
            self.subject_users.setdefault(entry.subject, set()).add(name)

    def forget(self, changes: Changes) -> list[HttpClient]:
        """Drop what ``changes`` names and what depends on it; the clients dropped (to close)."""
        if not changes:
            return []
        clients = set(changes.clients)
        for credential in changes.credentials:
            clients |= self.credential_users.pop(credential, set())
        for pipeline in changes.pipelines:
            clients |= self.pipeline_users.pop(pipeline, set())
            clients |= self.subject_users.pop(pipeline, set())
            for store in (self.pipeline_entries, self.pipelines, self.pipeline_managers, self.managers):
                store.pop(pipeline, None)
        pending = list(clients)
        while pending:  # a token_exchange client holds the token source of its subject: forget it along
            users = self.subject_users.pop(pending.pop(), set()) - clients
            clients |= users
            pending.extend(users)
        dropped = []
        for name in clients:
            self.client_entries.pop(name, None)
            self.managers.pop(name, None)
            client = self.clients.pop(name, None)
            if client is not None:
                dropped.append(client)
        self.definitions = None
        self.changed += 1
        return dropped

    def close(self) -> None:
        """Close the clients built here (a thread still using one reopens its session)."""
        close_clients(self.clients.values())


def close_clients(clients: Iterable[HttpClient]) -> None:
    """Close ``clients`` (a thread still using one reopens its session)."""
    for client in list(clients):
        client.close()
