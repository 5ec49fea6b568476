"""science/report.py: the decision rule by hand, block rendering, and the committed pages against the committed
summary (a number in docs/science.md or README.md that the summary does not give fails here)."""

from science.report import _num, main, render_page, verdict


def _row(lo, hi, p_holm, n=10, a=("em-gml", 2), b=("rft", 2)):
    return {"a": list(a), "b": list(b), "t": {"estimate": (lo + hi) / 2, "lo": lo, "hi": hi, "n": n},
            "p_holm": p_holm, "diffs": {str(i): (lo + hi) / 2 for i in range(n)}, "metric": "avg@n"}


def test_verdict_needs_the_interval_and_the_holm_p():
    assert verdict(_row(0.01, 0.03, 0.01)) == "**EM-GML beats RFT**"
    assert verdict(_row(-0.03, -0.01, 0.049)) == "**RFT beats EM-GML**"
    assert verdict(_row(0.01, 0.03, 0.05)) == "no significant difference at 10 seeds"  # CI above 0, Holm p not
    assert verdict(_row(-0.01, 0.03, 0.001)) == "no significant difference at 10 seeds"  # CI straddles 0
    assert verdict(_row(0.0, 0.02, 0.01, a=("grpo", 2), b=("sft", 0))) == "no significant difference at 10 seeds"


def test_numbers_that_round_to_zero_print_unsigned_zero():
    assert _num(-1e-16) == "+0.000" and _num(-1e-16, signed=False) == "0.000" and _num(-0.0126) == "-0.013"


def test_render_replaces_only_the_marked_blocks():
    summary = {"arms": {"main": {"contrasts": [_row(0.01, 0.03, 0.002),
                                               {**_row(-0.02, 0.02, 0.5), "metric": "pass@4"}]}}}
    summary["arms"]["main"]["contrasts"][1].pop("p_holm")
    page = ("intro\n<!-- science:decision -->\nold\n<!-- /science:decision -->\nmiddle\n"
            "<!-- science:secondary -->\n<!-- /science:secondary -->\nend\n")
    out = render_page(page, summary)
    assert out.startswith("intro\n<!-- science:decision -->\n| contrast |") and out.endswith("\nend\n")
    assert "| EM-GML - RFT | +0.020 | [+0.010, +0.030] | 0.002 | n/a | 10/10 | **EM-GML beats RFT** |" in out
    assert "| EM-GML r2 - RFT r2 | pass@4 | +0.000 | [-0.020, +0.020] | n/a | 0/10 |" in out
    assert "old" not in out and "middle" in out
    assert render_page(out, summary) == out


def test_committed_pages_match_the_committed_summary():
    assert main([]) == 0
