import re

import pytest

from medialens.ids import asset_id_for, execution_name_for, moment_id_for

pytestmark = pytest.mark.unit


def test_asset_id_is_stable_and_depends_on_revision() -> None:
    first = asset_id_for("drop", "incoming/a.pdf", '"etag-1"')
    assert first == asset_id_for("drop", "incoming/a.pdf", "etag-1")  # quoted and bare ETags agree
    assert first != asset_id_for("drop", "incoming/a.pdf", "etag-2")
    assert first != asset_id_for("drop", "incoming/b.pdf", "etag-1")
    assert first != asset_id_for("other", "incoming/a.pdf", "etag-1")


def test_execution_names_are_valid_step_functions_names() -> None:
    name = execution_name_for(asset_id_for("b", "k", "e"), "1")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name)
    assert execution_name_for("a1", "1", attempt=2) == "a1-p1-r2"
    assert execution_name_for("a1", "2.0.1") == "a1-p2_0_1"


def test_moment_ids_differ_by_position_and_modality() -> None:
    assert moment_id_for("a", "document", "p1#0") == moment_id_for("a", "document", "p1#0")
    assert moment_id_for("a", "document", "p1#0") != moment_id_for("a", "document", "p1#1")
    assert moment_id_for("a", "document", "p1#0") != moment_id_for("a", "speech", "p1#0")
