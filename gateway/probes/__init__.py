"""Access probes: try a running gateway as an attacker with ordinary keys would, and report leaks.

Operator tooling, like ``gateway.evaluation``: it talks to the gateway only over its public HTTP
API (httpx), so the same code checks the test stack in CI and a customer's deployment
(``holdfast verify-access``). ``records`` holds the typed results, ``detect`` the pure leak rules,
``plan`` the seeded probe plan, ``client`` the HTTP calls, ``engine`` discovery and the run.
"""
