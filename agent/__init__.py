"""The provider's desktop agent, ``workproof-agent``: capture, queue, upload, and the command line.

It talks to the server only over HTTP and imports nothing server-side (only ``domain.calendar``, which
is pure standard library), so it can ship as its own package.
"""
