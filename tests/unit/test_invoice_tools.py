"""The functions behind `invoicing parse`, `invoicing validate` and `invoicing bench parse`."""

import json

import pytest

from cli.invoice_tools import bench_parse, parse_command, validate_command
from deploy.simulators import suppliers as build


@pytest.fixture
def write(tmp_path):
    def write(content: bytes, name: str = "invoice") -> str:
        path = tmp_path / name
        path.write_bytes(content)
        return str(path)
    return write


def test_parse_prints_the_canonical_json(write):
    code, out = parse_command(write(build.facturx_pdf(lines=2)))
    document = json.loads(out)
    assert code == 0
    assert document["format"] == "facturx"
    assert document["totals"]["payable"] == "315.90"
    assert document["buyer"]["siret"] == build.REGION_SIRET
    assert out.startswith("{\n  ")


def test_parse_of_an_unreadable_file_exits_2_with_the_reason(write):
    code, out = parse_command(write(b"<Invoice/>"))
    assert code == 2
    assert json.loads(out)["error"] == "unknown_namespace"
    assert json.loads(out)["message"]


def test_parse_of_a_missing_file_exits_2(tmp_path):
    code, out = parse_command(tmp_path / "absent.xml")
    assert (code, json.loads(out)["error"]) == (2, "cannot_open")


def test_validate_a_valid_invoice_exits_0(write):
    code, out = validate_command(write(build.ubl()), "fr-public", build.REGION_SIRET)
    assert code == 0
    assert json.loads(out) == {"valid": True, "outcome": None, "errors": [], "warnings": []}


def test_validate_an_invalid_invoice_exits_1_with_the_findings(write):
    code, out = validate_command(write(build.cii(code_service=None)), "fr-public",
                                 build.REGION_SIRET)
    report = json.loads(out)
    assert code == 1
    assert report["valid"] is False and report["outcome"] == "A_RECYCLER"
    (error,) = report["errors"]
    assert set(error) == {"rule", "term", "location", "message"}
    assert (error["rule"], error["term"]) == ("FR-CODE-SERVICE", "BT-10")
    assert "« code service »" in out  # written as is, not escaped


def test_validate_an_unreadable_file_exits_2(write):
    code, out = validate_command(write(b""), "en16931", None)
    assert (code, json.loads(out)["error"]) == (2, "empty")


def test_validate_refuses_a_wrong_profile(write):
    path = write(build.cii(lines=1))
    with pytest.raises(ValueError):
        validate_command(path, "peppol", None)
    with pytest.raises(ValueError):
        validate_command(path, "fr-public", None)


def test_bench_reports_each_format_as_the_median_of_its_rounds():
    figures = bench_parse(seconds=0.15, rounds=3)
    assert figures["compiled_reader"] is True
    assert figures["rounds"] == 3
    for name in ("cii", "ubl", "facturx"):
        slowest, fastest = figures[f"{name}_per_s_range"]
        assert 0 < slowest <= figures[f"{name}_per_s"] <= fastest
        assert figures[f"{name}_cpu_us_per_doc"] > 0
    assert figures["lxml_parse_only_cii_per_s"] > figures["cii_per_s"]
    assert figures["other_load_cores"] >= 0


def test_bench_refuses_no_rounds():
    with pytest.raises(ValueError):
        bench_parse(seconds=1, rounds=0)
