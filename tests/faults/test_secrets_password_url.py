"""A password given as a URL query parameter (``?password=``) is masked in every output.

A whole study and ``validate --json`` run on (a) the sample SQLite registry through a URL with a
bogus ``?password=`` parameter (SQLite ignores it) and (b) a PostgreSQL registry (trust
authentication ignores the password). Every file written and the CLI output are scanned for
the secret, raw and URL-encoded.
"""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from synthctl.cli import app
from tests.databases import PG_URL, scratch_pg_schema
from tests.faults._db_study import files_containing, simulate_registry, write_study

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::connectors.privileges.RegistryWritableWarning")]

cli = CliRunner()


def _run_and_validate(tmp_path, url: str, secret: str, schema: str | None = None):
    spec = write_study(tmp_path, url, schema=schema)
    res = cli.invoke(app, ["run", str(spec), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    args = ["validate", "--registry", url, "--out", str(tmp_path / "quality"), "--json"]
    if schema:
        args += ["--schema", schema]
    val = cli.invoke(app, args)
    assert val.exit_code in (0, 1), val.output  # 1: a check failed, which is fine here
    summary = json.loads(val.stdout)
    for text in (res.output, val.output):
        assert secret not in text
    assert "password=***" in summary["registry"]
    # the spec is the user's file: the only one allowed to hold the secret
    assert files_containing(tmp_path, secret) == [str(spec)]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "password=***" in manifest["inputs"]["registry"]["url"]
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    written += [p for p in (tmp_path / "quality").rglob("*") if p.is_file()]
    assert {"manifest.json", "report.html", "quality.json", "quality.html"} <= {
        p.name for p in written}
    return manifest


def test_sqlite_url_with_password_parameter(tmp_path):
    from sample_data.paths import SAMPLE_REGISTRY

    secret = "Sq-Secret-5521"
    shutil.copy(SAMPLE_REGISTRY, tmp_path / "registry.sqlite")
    manifest = _run_and_validate(tmp_path, f"sqlite:///{tmp_path}/registry.sqlite?password="
                                 f"{secret}", secret)
    assert manifest["inputs"]["registry"]["role"]["can_write"] is False


@pytest.mark.db
def test_postgresql_url_with_password_parameter(tmp_path):
    from sample_data.writer import write_registry

    secret = "Pg-Secret-7730"
    with scratch_pg_schema("synthctl_secret") as (schema, admin):
        write_registry(admin, simulate_registry(), schema=schema)
        manifest = _run_and_validate(tmp_path, f"{PG_URL}?password={secret}", secret,
                                     schema=schema)
    role = manifest["inputs"]["registry"]["role"]
    assert role["role"] == "postgres" and role["can_write"] is True
    assert any(w["message"].startswith(manifest["inputs"]["registry"]["url"])
               and "read-only role" in w["message"] for w in manifest["warnings"])
