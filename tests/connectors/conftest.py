"""A tiny hand-made registry (every derivation rule has a patient) and database fixtures.

Patients (index = first line after a platinum_pemetrexed line):
- P01: plat L1, index L2; CRS+HIPEC before index; baseline SD on index day (ignored); PD later.
- P02: IO in L1, plat L2, index L3 (ECOG missing); CRS without HIPEC; clinical progression
  (response NE) before death -> PFS event at clinical progression; OS death.
- P03: two diagnoses (the earliest counts); CRS *after* index (not prior); death without
  progression -> PFS event at death.
- P04: platinum end date missing (index by line number; PFI missing); no assessment after index
  and alive -> PFS censored at day 0; OS censored at last contact.
- P05: no platinum line -> no index line.  P06: platinum line only -> no index line.
- P07: index line without line number, after platinum by dates; PD *before* index ignored;
  SD, PR then NE -> censored at the PR (last adequate assessment).
- P08: plat L1, L2 (index), L3 platinum rechallenge, L4: with selection="all" three rows, L4's
  PFI from L3's end; L2 has a line-number-only follower; PD on the index day is baseline.
- P09: 16 years old at index (fails age >= 18); death dated before index -> OS missing.
- P10: L2 (immunotherapy) and L3 start on the same day after platinum: index L2 (lower line
  number); neither counts as "prior" for the other (strictly earlier start only).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from sample_data.writer import write_registry, write_registry_sqlite
from tests.databases import scratch_mariadb_database, scratch_pg_schema

D = date


def registry_tables() -> dict[str, pd.DataFrame]:
    centres = pd.DataFrame(
        {"centre_id": ["C1", "C2"], "centre_name": ["Lyon", "Paris"], "region": ["ARA", "IDF"]}
    )
    patients = pd.DataFrame(
        [
            ("P01", "C1", "F", D(1960, 1, 1)),
            ("P02", "C1", "M", D(1955, 6, 15)),
            ("P03", "C2", "M", D(1970, 2, 28)),
            ("P04", "C2", "F", D(1948, 12, 31)),
            ("P05", "C1", "F", D(1965, 3, 3)),
            ("P06", "C2", "M", D(1966, 4, 4)),
            ("P07", "C1", None, D(1959, 7, 7)),
            ("P08", "C2", "F", D(1962, 8, 8)),
            ("P09", "C1", "M", D(2003, 5, 1)),
            ("P10", "C2", "F", D(1970, 10, 10)),
        ],
        columns=["patient_id", "centre_id", "sex", "birth_date"],
    )
    pm = "peritoneal_mesothelioma"
    diagnoses = pd.DataFrame(
        [
            (1, "P01", D(2019, 1, 10), pm, "epithelioid", 12, 10.0, "lost"),
            (2, "P02", D(2017, 11, 20), pm, "biphasic", 25, None, "retained"),
            (3, "P03", D(2020, 2, 1), pm, "sarcomatoid", 30, 50.0, None),  # later record
            (4, "P03", D(2019, 2, 1), pm, "biphasic", 20, 40.0, "lost"),  # earliest: used
            (5, "P04", D(2015, 5, 5), pm, "epithelioid", None, 5.5, "lost"),
            (6, "P05", D(2018, 1, 1), pm, "epithelioid", 3, 2.0, "lost"),
            (7, "P06", D(2018, 1, 1), "pseudomyxoma_peritonei", "other", 9, None, None),
            (8, "P07", D(2018, 6, 1), pm, None, 15, 12.0, "retained"),
            (9, "P08", D(2018, 3, 3), pm, "epithelioid", 7, 8.0, "lost"),
            (10, "P09", D(2018, 9, 9), pm, "other", 5, 1.0, "retained"),
            (11, "P10", D(2018, 11, 1), pm, "epithelioid", 10, 3.0, "lost"),
        ],
        columns=["diagnosis_id", "patient_id", "diagnosis_date", "disease", "histology", "pci",
                 "ki67_percent", "bap1_status"],
    )
    surgeries = pd.DataFrame(
        [
            (1, "P01", D(2018, 12, 1), True, True, 0),
            (2, "P02", D(2018, 1, 1), True, False, 1),
            (3, "P03", D(2020, 3, 1), True, True, 0),  # after index
            (4, "P08", D(2018, 4, 1), False, False, None),  # exploratory, no CRS
        ],
        columns=["surgery_id", "patient_id", "surgery_date", "crs", "hipec", "cc_score"],
    )
    pp, pa = "platinum_pemetrexed", "platinum;antifolate"
    lines = pd.DataFrame(
        [
            (101, "P01", 1, pp, pa, D(2019, 2, 1), D(2019, 6, 1), "completed", 0),
            (102, "P01", 2, "gemcitabine", "antimetabolite", D(2019, 9, 1), D(2019, 12, 1),
             "progression", 1),
            (103, "P01", 3, "nivolumab", "immune_checkpoint_inhibitor", D(2020, 1, 15), None,
             None, 1),
            (201, "P02", 1, "pembrolizumab", "immune_checkpoint_inhibitor", D(2018, 3, 1),
             D(2018, 8, 1), "progression", 1),
            (202, "P02", 2, pp, pa, D(2018, 9, 1), D(2019, 1, 15), "completed", 1),
            (203, "P02", 3, "vinorelbine", "vinca_alkaloid", D(2019, 3, 1), None, None, None),
            (301, "P03", 1, pp, pa, D(2019, 3, 1), D(2019, 7, 1), "completed", 0),
            (302, "P03", 2, "gemcitabine", "antimetabolite", D(2020, 1, 10), D(2020, 4, 1),
             "death", 2),
            (401, "P04", 1, pp, pa, D(2015, 6, 1), None, None, 1),
            (402, "P04", 2, "gemcitabine", "antimetabolite", D(2016, 1, 1), None, None, 0),
            (501, "P05", 1, "gemcitabine", "antimetabolite", D(2018, 2, 1), D(2018, 5, 1),
             "completed", 0),
            (601, "P06", 1, pp, pa, D(2018, 2, 1), D(2018, 6, 1), "completed", 0),
            (701, "P07", 1, pp, pa, D(2018, 7, 1), D(2019, 3, 15), "progression", 1),
            (702, "P07", None, "vinorelbine", "vinca_alkaloid", D(2019, 5, 1), None, None, 1),
            (801, "P08", 1, pp, pa, D(2018, 5, 1), D(2018, 10, 1), "completed", 0),
            (802, "P08", 2, "gemcitabine", "antimetabolite", D(2019, 1, 10), D(2019, 4, 1),
             "progression", 0),
            (803, "P08", 3, pp, pa, D(2019, 5, 1), D(2019, 9, 1), "completed", 1),
            (804, "P08", 4, "vinorelbine", "Vinca_Alkaloid; other", D(2019, 12, 1), None,
             None, 1),
            (901, "P09", 1, pp, pa, D(2018, 10, 1), D(2019, 2, 1), "completed", 0),
            (902, "P09", 2, "gemcitabine", "antimetabolite", D(2019, 4, 1), None, None, 0),
            (1001, "P10", 1, pp, pa, D(2019, 1, 1), D(2019, 4, 1), "completed", 0),
            (1002, "P10", 2, "nivolumab", "immune_checkpoint_inhibitor", D(2019, 6, 1), None,
             None, 1),
            (1003, "P10", 3, "gemcitabine", "antimetabolite", D(2019, 6, 1), None, None, 1),
        ],
        columns=["line_id", "patient_id", "line_number", "regimen", "drug_classes", "start_date",
                 "end_date", "end_reason", "ecog_at_start"],
    )
    r = "RECIST1.1"
    assessments = pd.DataFrame(
        [
            (1, "P01", D(2019, 9, 1), r, "SD", False),  # on index day: baseline
            (2, "P01", D(2019, 10, 15), r, "SD", False),
            (3, "P01", D(2019, 11, 20), r, "PR", False),
            (4, "P01", D(2020, 1, 5), r, "PD", False),  # first PD -> event
            (5, "P01", D(2020, 3, 1), r, "PD", False),
            (6, "P02", D(2019, 4, 20), "mRECIST", "SD", False),
            (7, "P02", D(2019, 6, 10), "mRECIST", "NE", None),
            (8, "P02", D(2019, 7, 30), "mRECIST", "NE", True),  # clinical progression
            (9, "P03", D(2020, 3, 1), r, "SD", False),
            (10, "P07", D(2019, 4, 1), r, "PD", False),  # before index: ignored
            (11, "P07", D(2019, 6, 15), r, "SD", False),
            (12, "P07", D(2019, 8, 1), r, "PR", False),  # last adequate -> censored here
            (13, "P07", D(2019, 9, 15), r, "NE", False),
            (14, "P08", D(2019, 1, 10), r, "PD", False),  # on index day: baseline
            (15, "P08", D(2019, 3, 1), r, "SD", False),
            (16, "P08", D(2019, 4, 10), r, "PD", False),
            (17, "P08", D(2019, 11, 1), r, "SD", False),
            (18, "P08", D(2020, 2, 1), r, "PD", False),
            (19, "P09", D(2019, 6, 1), r, "SD", False),
        ],
        columns=["assessment_id", "patient_id", "assessment_date", "criteria",
                 "overall_response", "clinical_progression"],
    )
    follow_up = pd.DataFrame(
        [
            ("P01", D(2020, 6, 1), "alive", None),
            ("P02", D(2019, 10, 1), "dead", D(2019, 10, 1)),
            ("P03", D(2020, 5, 1), "dead", D(2020, 5, 1)),
            ("P04", D(2017, 3, 1), "alive", None),
            ("P05", D(2019, 1, 1), "alive", None),
            ("P06", D(2019, 1, 1), "alive", None),
            ("P07", D(2019, 12, 31), "alive", None),
            ("P08", D(2020, 4, 1), "alive", None),
            ("P09", D(2019, 1, 1), "dead", D(2019, 1, 1)),  # death before index: bad data
            ("P10", D(2019, 12, 1), "alive", None),
        ],
        columns=["patient_id", "last_contact_date", "vital_status", "death_date"],
    )
    return {
        "centres": centres,
        "patients": patients,
        "diagnoses": diagnoses,
        "surgeries": surgeries,
        "treatment_lines": lines,
        "tumour_assessments": assessments,
        "follow_up": follow_up,
    }


@pytest.fixture(scope="session")
def tiny_tables() -> dict[str, pd.DataFrame]:
    return registry_tables()


@pytest.fixture(scope="session")
def tiny_sqlite(tmp_path_factory, tiny_tables) -> str:
    """URL of the tiny registry in a SQLite file (written once per session)."""
    path = tmp_path_factory.mktemp("registry") / "tiny.sqlite"
    write_registry_sqlite(tiny_tables, path)
    return f"sqlite:///{path}"


@pytest.fixture
def pg_schema():
    """A fresh PostgreSQL schema (name, admin engine); dropped afterwards."""
    with scratch_pg_schema("synthctl_conn") as scratch:
        yield scratch


@pytest.fixture
def mariadb_database():
    """A fresh MariaDB database (name, admin engine); dropped afterwards."""
    with scratch_mariadb_database("synthctl_conn") as scratch:
        yield scratch


def write_to(engine: sa.Engine, tables, schema: str | None, mapping=None) -> None:
    write_registry(engine, tables, schema=schema, mapping=mapping)
