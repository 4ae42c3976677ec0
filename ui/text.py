"""Text the pages show: user content made safe for Markdown, and humanised quantities.

``safe_markdown`` is applied to everything users wrote (gem titles and content, questions,
reflection answers that quote gems) before it reaches ``st.markdown``/``st.subheader``/
``st.caption``: a Markdown image (``![alt](http://...)`` or a reference-style one) becomes a
plain link, and HTML tags are escaped, so a reader's browser never fetches a remote resource
because a gem asked it to (a tracking channel). Links stay links: they load only when clicked.
"""
from __future__ import annotations

import re

_IMAGE = re.compile(r"!\[")  # inline and reference-style images both start with "!["
_TAG = re.compile(r"<(?=[A-Za-z/!?])")  # the start of an HTML tag, comment or declaration


def safe_markdown(text: str | None) -> str:
    """``text`` with Markdown images turned into links and HTML tags escaped (shown as text)."""
    if not text:
        return ""
    text = _IMAGE.sub(lambda _: "\\!\\[", str(text))  # "![x](u)" -> "!" + the link-less text "[x](u)"
    return _TAG.sub("&lt;", text)


def plural(value: float, unit: str) -> str:
    """``1 hour``, ``2.5 hours``, ``0 hours`` (the unit in the singular given; ``x`` → ``xes``)."""
    v = float(value)
    text = f"{v:.4g}"
    if not unit:
        return text
    if abs(v) == 1.0:
        return f"{text} {unit}"
    return f"{text} {unit}es" if unit.endswith(("s", "x", "ch", "sh")) else f"{text} {unit}s"


def units(unit: str) -> str:
    """The plural of a time unit for labels: ``hours``."""
    return plural(2, unit).split(" ", 1)[1] if unit else ""
