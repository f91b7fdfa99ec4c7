"""flows package: the Prefect 3 flows and the plain functions they share with the CLI."""

import os

# Prefect waits 20 s for its ephemeral API server by default; on a loaded 2-core machine the
# server can take longer to start. Set before Prefect is imported (its settings load then);
# a value the user exported wins.
EPHEMERAL_STARTUP_TIMEOUT_S = "120"
os.environ.setdefault(
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", EPHEMERAL_STARTUP_TIMEOUT_S
)
# The ephemeral server's telemetry heartbeat fails noisily on offline machines and under load
# (a locked SQLite database); stylebench's pipeline runs offline. An exported value wins.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
