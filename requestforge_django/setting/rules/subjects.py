"""``SUBJECT_TOKEN_FROM`` of ``token_exchange`` clients: it must name a token source (E052), and never come back (E053).

A ``token_exchange`` client sends another client's or pipeline's token as its subject
token. That other name must obtain tokens (a client with an OAuth TYPE or a pipeline
TYPE, or a pipeline); and following ``SUBJECT_TOKEN_FROM`` from client to client must end
at a name that is not itself an exchange of something further up the chain, else no
token could ever be the first. The same rule (:func:`subject_problem`) serves the
settings, the admin's database definitions and the registry, which refuses to build a
cycle it finds at run time (a definition changed in the database meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from ..ids import E_SUBJECT_CYCLE, E_SUBJECT_TOKEN
from ..problems import choices_text, suggest
from ..readers import Reader
from ..specs import ClientSpec

__all__ = ["SubjectRules", "auth_kind", "kind_in", "subject_cycle", "subject_in", "subject_problem"]

#: What :func:`subject_problem` is told about a name: ``"token"`` (it obtains tokens), an AUTH TYPE that does not, or ``None``.
Kind = Callable[[str], str | None]


def auth_kind(spec: ClientSpec | None) -> str:
    """What a client is as a subject-token source: ``"token"`` if its AUTH obtains tokens, else its TYPE (``"none"``: no AUTH)."""
    auth = spec.auth if spec is not None else None
    if auth is None:
        return "none"
    return "token" if auth.uses_tokens else auth.type


def subject_in(client_spec: Callable[[str], ClientSpec | None]) -> Callable[[str], str | None]:
    """``subject_of(name)``: the SUBJECT_TOKEN_FROM of the client ``client_spec`` finds (``None``: not an exchange)."""

    def subject_of(name: str) -> str | None:
        spec = client_spec(name)
        auth = spec.auth if spec is not None else None
        return auth.subject_token_from if auth is not None and auth.type == "token_exchange" else None

    return subject_of


def subject_cycle(name: str, subject_of: Callable[[str], str | None]) -> list[str] | None:
    """The names of a cycle reached by following SUBJECT_TOKEN_FROM from ``name`` (first name repeated last), or ``None``."""
    chain = [name]
    current = subject_of(name)
    while current is not None:
        if current in chain:
            return [*chain[chain.index(current) :], current]
        chain.append(current)
        current = subject_of(current)
    return None


def subject_problem(name: str, subject: str, kind_of: Kind, subject_of: Callable[[str], str | None]) -> tuple[str, str, str] | None:
    """``(check id, detail, hint)`` of what is wrong with client ``name`` taking its subject token from ``subject``."""
    kind = kind_of(subject)
    if kind is None:
        return (
            E_SUBJECT_TOKEN,
            f'names "{subject}", which is neither a client nor a pipeline.',
            "Name a client whose AUTH obtains tokens, or a pipeline.",
        )
    if kind != "token":
        return (
            E_SUBJECT_TOKEN,
            f'names client "{subject}", whose AUTH TYPE "{kind}" obtains no token to exchange.',
            "Name a client whose AUTH obtains tokens (client_credentials, password, jwt_bearer, token_exchange, pipeline), or a pipeline.",
        )
    cycle = subject_cycle(name, subject_of)
    if cycle is not None:
        return (
            E_SUBJECT_CYCLE,
            f"makes a cycle of token exchanges ({' -> '.join(cycle)}); no subject token could ever be obtained first.",
            "Point one SUBJECT_TOKEN_FROM of the cycle at a client or pipeline that obtains its token itself.",
        )
    return None


def kind_in(clients: Mapping[str, ClientSpec | None], pipelines: Collection[str]) -> Kind:
    """:data:`Kind` over ``clients`` and ``pipelines`` (a client shadows its namesake pipeline, as in the registry)."""

    def kind_of(name: str) -> str | None:
        if name in clients:
            return auth_kind(clients[name])
        return "token" if name in pipelines else None

    return kind_of


class SubjectRules(Reader):
    """E052/E053 over every client of the setting (needs them all, so it runs after they are read)."""

    def subject_tokens(self, clients: Mapping[str, ClientSpec], pipelines: Collection[str]) -> None:
        kind_of = kind_in(clients, pipelines)
        subject_of = subject_in(clients.get)

        cycles: set[frozenset[str]] = set()
        for name in clients:
            subject = subject_of(name)
            if subject is None:
                continue
            found = subject_problem(name, subject, kind_of, subject_of)
            if found is None:
                continue
            check_id, detail, hint = found
            if check_id == E_SUBJECT_CYCLE:
                members = frozenset(subject_cycle(name, subject_of) or ())
                if members in cycles or name not in members:
                    continue  # reported once, on its first member (a client leading into it has no cycle of its own)
                cycles.add(members)
            elif check_id == E_SUBJECT_TOKEN and kind_of(subject) is None:
                detail = detail[:-1] + suggest(subject, [*clients, *pipelines])
                hint = f"{hint} Defined: {choices_text([*clients, *pipelines]) or '(none)'}."
            self.report(check_id, ("CLIENTS", name, "AUTH", "SUBJECT_TOKEN_FROM"), detail, hint)
