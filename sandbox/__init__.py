"""The sandbox: worlds pgdeck is tried in, made of real parts.

The demo world (``sandbox.demo``: a month of real ``pg_dumpall`` backups of four clusters
and their Kubernetes), the fabricated Kubernetes objects the demo and the tests' fake API
server share (``sandbox.kube``), and a throwaway PostgreSQL run from the machine's own
binaries (``sandbox.localpg``). None of it is pgdeck's own work: ``sandbox`` may import
``services``, ``services`` never imports ``sandbox`` (tests/test_layering.py holds that).
"""
