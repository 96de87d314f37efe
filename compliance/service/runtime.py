"""Building the long-lived pieces from settings: engine, blob store, key, analyzer, job context."""

from __future__ import annotations

from ..config import Settings, load_settings
from .blobs import BlobStore
from .crypto import Crypto
from .settings import ServiceSettings, load_service_settings


def blob_store(settings: Settings) -> BlobStore:
    return BlobStore(settings.data_dir / "blobs")


def crypto_for(settings: Settings, svc: ServiceSettings) -> Crypto:
    return Crypto.from_settings(svc.secret_key, settings.data_dir)


def build_job_context(settings: Settings | None = None, svc: ServiceSettings | None = None,
                      analyzer=None, engine=None):
    from .. import store
    from ..pipeline import Analyzer
    from .jobs import JobContext

    settings = settings or load_settings()
    svc = svc or load_service_settings()
    engine = engine or store.make_engine(settings.db_url)
    analyzer = analyzer or Analyzer(settings, engine=engine)
    return JobContext(engine=engine, analyzer=analyzer, blobs=blob_store(settings),
                      crypto=crypto_for(settings, svc), svc=svc)
