"""A stand-in for the partner companies' APIs, served by the example project itself.

Real partners run their own servers; this app plays all three so the demo needs no
network: an OAuth2 token endpoint, a three-step device/app/user token flow and
protected endpoints that reject expired, revoked or wrong tokens. Its tokens live in
the ``"partner"`` database cache, so every process of the demo agrees on them.
"""
