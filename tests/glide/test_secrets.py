"""Credentials never reach an error or a log: glide.secrets is the one masking helper."""

from __future__ import annotations

import socket

import pytest

from glide.secrets import mask_secrets, mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://default:pw@host/1", "rediss://default:***@host/1"),
        ("postgresql+psycopg://user:pw@host:5432/db", "postgresql+psycopg://user:***@host:5432/db"),
        ("postgresql+psycopg://user:p@ss:w0rd@host/db", "postgresql+psycopg://user:***@host/db"),
        ("redis://host:6379/0?password=pw&ssl=true", "redis://host:6379/0?password=***&ssl=true"),
        # Nothing to hide: unchanged.
        ("postgresql+psycopg://postgres@127.0.0.1:5432/test", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("sqlite:////tmp/catalog.db", "sqlite:////tmp/catalog.db"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_mask_url_takes_a_sqlalchemy_url():
    import sqlalchemy as sa

    out = mask_url(sa.make_url("postgresql+psycopg://user:hunter2@host/db"))
    assert "hunter2" not in out and out.startswith("postgresql+psycopg://user:")


def test_every_password_in_a_message_is_masked():
    msg = ("cannot reach postgresql+psycopg://u:pg-secret@db:5432/x, then redis://:redis-secret@cache:6379/0 "
           "(feast connection string cache:6379,db=0,password=feast-secret,ssl=true)")
    out = mask_secrets(msg)
    for secret in ("pg-secret", "redis-secret", "feast-secret"):
        assert secret not in out
    assert "postgresql+psycopg://u:***@db:5432/x" in out and "redis://:***@cache:6379/0" in out
    assert "password=***,ssl=true" in out


def test_the_catalogs_masked_url_is_the_one_helper():
    from glide.catalog.connection import masked_url

    assert masked_url("postgresql+psycopg://user:pw@host/db") == mask_url("postgresql+psycopg://user:pw@host/db")
    # A URL SQLAlchemy cannot parse is still shown, minus the password.
    assert masked_url("postgresql+psycopg://user:hunter2@host:notaport/db") == "postgresql+psycopg://user:***@host:notaport/db"


def _closed_port() -> tuple[socket.socket, int]:
    """A port on 127.0.0.1 that refuses connections while the socket lives (bound, not listening)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def test_unreachable_postgres_catalog_error_hides_the_password():
    pytest.importorskip("psycopg")
    from glide.catalog import CatalogDB, CatalogError

    sock, port = _closed_port()
    with sock:
        db = CatalogDB(f"postgresql+psycopg://glide:pg-secret@127.0.0.1:{port}/glide?connect_timeout=3",
                       schema="glide")
        with pytest.raises(CatalogError) as info:
            db.promoted_model()
    assert "pg-secret" not in str(info.value) and "pg-secret" not in repr(db)
    assert "cannot reach the catalog database" in str(info.value) and "glide:***@127.0.0.1" in str(info.value)


def test_worker_logs_never_carry_a_password():
    import logging

    from streams.logs import JsonFormatter, PlainFormatter

    record = logging.LogRecord("glide.streams", logging.WARNING, __file__, 1,
                               "redis down: redis://:hunter2@10.0.0.1:6379/0", (), None)
    record.store = "postgresql+psycopg://glide:hunter2@db:5432/glide"
    for formatter in (JsonFormatter(), PlainFormatter("%(message)s")):
        line = formatter.format(record)
        assert "hunter2" not in line and "***" in line
