"""Real servers and worker code shared by the test suite and the benchmarks.

Everything here starts real processes or sockets (redis-server, an OAuth2 token
endpoint) because cross-process token sharing can only be shown against real ones.
"""
