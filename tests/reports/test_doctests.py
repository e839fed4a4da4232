"""The docstring examples of the survival modules run and give what they say."""

from __future__ import annotations

import doctest

import pytest

import reports.cox
import reports.km


@pytest.mark.parametrize("module", [reports.km, reports.cox])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
