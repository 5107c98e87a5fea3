"""``irx serve``: the on-call loop's front door.

``app`` is the HTTP side (an ASGI app on Starlette, served by uvicorn): it authenticates Alertmanager's
webhook, reads the notification once into checked values, matches it to a route and records it in the
incident book. ``dispatch`` is the run side: it takes queued incidents from the book, at most the routes'
``max_concurrent`` at a time, and starts each as an ordinary ``irx run`` process, with its own journal,
locks, notifications and report. The two share nothing but the book, which is durable, so a restart of
``irx serve`` loses no incident and starts no duplicate.
"""
