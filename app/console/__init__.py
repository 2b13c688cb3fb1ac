"""The operator console at ``/ui``: server-rendered pages, a little JS, JSON under ``/ui/api``.

It reads what the gateway already keeps (the spend aggregates, the decision log, the key
and team tables, readiness, ``/router/info``) and acts through ``app.access.admin``, the
admin API's own logic: no second copy of any rule. Sign-in takes the master key or an
admin virtual key; the browser then holds only a signed, expiring session cookie
(``session``), never the key. Must not: load assets from anywhere but the gateway.
"""
