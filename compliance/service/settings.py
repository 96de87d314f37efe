"""The review service's own settings, from environment variables (COMPLIANCE_*), beside the
analysis settings in compliance.config (data_dir, db_url, models, ...)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from ..errors import ComplianceError


@dataclass
class ServiceSettings:
    #: largest accepted upload (one request), bytes
    max_upload_bytes: int = 512 * 1024**2
    #: a zip may hold at most this many members and this many uncompressed bytes
    max_zip_members: int = 1000
    max_zip_bytes: int = 4 * 1024**3
    #: 'embedded' (worker threads inside `compliance serve`), 'celery' (Redis broker), or 'none'
    queue: str = "embedded"
    #: embedded analysis workers (each keeps its own models warm)
    workers: int = 1
    #: a claimed job belongs to its worker this long past the last heartbeat
    lease_s: float = 60.0
    #: a job whose worker died this many times fails instead of being retried again
    max_attempts: int = 3
    #: idle workers look for new jobs this often (uploads also wake them at once)
    poll_s: float = 2.0
    request_timeout_s: float = 60.0
    upload_timeout_s: float = 900.0
    broker_url: str = "redis://127.0.0.1:6379/0"
    #: Redis redelivers an unacknowledged task (e.g. its worker was killed) after this long
    visibility_timeout_s: float = 3600.0
    #: encryption key for sensitive fields (any string; a key file in data_dir is made if unset)
    secret_key: str = ""
    #: keep the unmasked transcript (encrypted, admins only); False drops it for good
    keep_unmasked: bool = True
    session_ttl_h: float = 12.0
    #: Secure flag on the login cookie (set when served over HTTPS)
    cookie_secure: bool = False


_FIELDS = {f.name: f for f in dataclasses.fields(ServiceSettings)}


def load_service_settings(**overrides) -> ServiceSettings:
    values = {}
    for name, f in _FIELDS.items():
        raw = os.environ.get(f"COMPLIANCE_{name.upper()}")
        if raw is None:
            continue
        kind = str(f.type)
        try:
            if kind == "bool":
                values[name] = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif kind == "int":
                values[name] = int(raw)
            elif kind == "float":
                values[name] = float(raw)
            else:
                values[name] = raw
        except ValueError:
            raise ComplianceError(f"COMPLIANCE_{name.upper()}={raw!r} is not a valid {kind}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = ServiceSettings(**values)
    if settings.queue not in ("embedded", "celery", "none"):
        raise ComplianceError(f"COMPLIANCE_QUEUE must be embedded, celery or none, not {settings.queue!r}")
    return settings
