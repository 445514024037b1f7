"""seglib.tables: one table, three renderings."""

import pytest

from seglib.metrics.uncertainty import Estimate
from seglib.tables import Table


def test_plain_text_html_and_markdown_agree():
    table = Table(["method", "J", "n"], [["memory", 0.4114, 32], ["first frame", Estimate(0.3, 0.25, 0.35), 32]],
                  caption="32 clips")
    text = str(table).splitlines()
    assert text[0] == "32 clips"
    assert text[1].split() == ["method", "J", "n"] and set(text[2]) == {"-", " "}
    assert text[3].split() == ["memory", "0.411", "32"]
    assert str(Estimate(0.3, 0.25, 0.35)) in text[4]
    assert len(text[3]) <= len(text[2])  # aligned to the rule
    page = table._repr_html_()
    assert page.count("<tr>") == 3 and "<caption>32 clips</caption>" in page and "0.411" in page
    assert '<td style="text-align:right">32</td>' in page  # a numeric column is right-aligned
    assert table.markdown().splitlines()[1] == "| --- | --- | ---: |"


def test_html_is_escaped():
    assert "&lt;b&gt;" in Table(["x"], [["<b>"]])._repr_html_()


@pytest.mark.parametrize("header, rows, digits, message", [
    ([], [], 3, "header must be a non-empty sequence"),
    ("ab", [], 3, "header must be a non-empty sequence"),
    (["a", "b"], [[1]], 3, r"rows\[0\] must have 2 cells"),
    (["a"], ["x"], 3, r"rows\[0\] must have 1 cells"),
    (["a"], [[1]], -1, "digits must be an int >= 0"),
])
def test_bad_tables_are_refused(header, rows, digits, message):
    with pytest.raises(ValueError, match=message):
        Table(header, rows, digits=digits)
