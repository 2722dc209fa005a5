"""How the readout and the plan write numbers: rates in % and pp, means with 4 significant digits, p-values."""

from __future__ import annotations


def p_text(p_value: float) -> str:
    """'p < 0.001' or 'p = 0.042'."""
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def value_text(x: float, binary: bool, signed: bool = False) -> str:
    """A rate as '4.10 %' (a lift as '+0.52 pp'), a mean as '1,234' (a lift as '+12.5')."""
    if binary:
        return f"{100 * x:+.2f} pp" if signed else f"{100 * x:.2f} %"
    return f"{x:+,.4g}" if signed else f"{x:,.4g}"
