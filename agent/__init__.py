"""The provider's desktop agent, ``workproof-agent``: capture, queue, upload, and the command line.

It talks to the server only over HTTP and imports nothing server-side (only ``domain.calendar``, which
is pure standard library), so it can ship as its own package.
"""

import sys

# httpx imports its own command line (rich, click, pygments: about 6 MB resident) whenever those happen to
# be installed, and the agent never uses it. Blocking that one module makes httpx skip it (it guards the
# import), so the tracker stays as small as on a machine where they are not installed.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
