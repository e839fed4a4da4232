"""The registry metadata: physical names from a mapping, logical keys, constraints."""

import sqlalchemy as sa

from connectors.schema import LOGICAL_SCHEMA, TableMapping, build_metadata


def test_renamed_tables_and_columns_keep_logical_keys_and_foreign_keys():
    mapping = {
        "patients": TableMapping("pts", {"patient_id": "pid", "sex": "gender"}),
        "centres": TableMapping("ctr", {"centre_id": "cid"}),
    }
    metadata, tables = build_metadata(mapping)
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)  # resolving the foreign keys fails if they name physical columns

    assert tables["patients"].name == "pts"
    assert tables["patients"].c.sex.name == "gender"
    fk = next(iter(tables["diagnoses"].c.patient_id.foreign_keys))
    assert (fk.column.table.name, fk.column.name) == ("pts", "pid")
    fk = next(iter(tables["patients"].c.centre_id.foreign_keys))
    assert (fk.column.table.name, fk.column.name) == ("ctr", "cid")


def test_every_logical_column_is_present_without_constraints():
    _, tables = build_metadata(with_constraints=False)
    for name, specs in LOGICAL_SCHEMA.items():
        assert [c.key for c in tables[name].columns] == [s.name for s in specs]
        assert not tables[name].primary_key.columns
