"""Password masking: every way a password can appear in a database URL or DSN."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from connectors.urls import mask_secrets, mask_url

SECRET = "s3cr3t"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://alice:s3cr3t@db:5432/reg", "postgresql+psycopg://alice:***@db:5432/reg"),
        ("postgresql+psycopg://alice@db/reg?password=s3cr3t&sslmode=require",
         "postgresql+psycopg://alice@db/reg?password=***&sslmode=require"),
        ("mysql+pymysql://bob@db/reg?charset=utf8mb4&passwd=s3cr3t",
         "mysql+pymysql://bob@db/reg?charset=utf8mb4&passwd=***"),
        ("mysql+pymysql://bob@db/reg?PWD=s3cr3t", "mysql+pymysql://bob@db/reg?PWD=***"),
        ("sqlite:///r.sqlite?password=s3cr3t", "sqlite:///r.sqlite?password=***"),
        ("host=db user=alice password=s3cr3t dbname=reg",
         "host=db user=alice password=*** dbname=reg"),
        ("host=db password = 's3cr3t with spaces' dbname=reg", "host=db password = *** dbname=reg"),
        ("postgresql://alice:s3cr3t@ss@db/reg", "postgresql://alice:***@db/reg"),  # raw '@'
        ("postgresql://alice:s3cr3t%40x@db/reg", "postgresql://alice:***@db/reg"),
        ("not a url but password=s3cr3t", "not a url but password=***"),
        ("postgresql://db/reg?sslpassword=s3cr3t", "postgresql://db/reg?sslpassword=***"),
    ],
)
def test_every_form_is_masked(url, shown):
    assert mask_url(url) == shown
    assert SECRET not in mask_url(url)


def test_sqlalchemy_url_objects_and_messages():
    url = sa.make_url("postgresql+psycopg://alice:s3cr3t@db/reg?password=s3cr3t")
    assert mask_url(url) == "postgresql+psycopg://alice:***@db/reg?password=***"
    text = f"cannot connect to {url.render_as_string(hide_password=False)} (timeout)"
    assert SECRET not in mask_secrets(text) and mask_secrets(text).endswith("(timeout)")


def test_urls_without_secrets_are_unchanged():
    for url in ("sqlite:///r.sqlite", "postgresql+psycopg://alice@db:5432/reg?sslmode=require",
                "mysql+pymysql://bob@db/reg", "host=db user=alice dbname=reg"):
        assert mask_url(url) == url


def test_the_manifest_uses_the_same_function():
    from synthctl.manifest import mask_url as manifest_mask

    url = "postgresql://u@h/db?password=s3cr3t"
    assert manifest_mask(url) == mask_url(url)
