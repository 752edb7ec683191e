"""Generated tables inside hand-written documents: a section between two HTML comments.

``<!-- begin: NAME -->`` and ``<!-- end: NAME -->`` mark where a table produced by a run goes;
everything else in the document stays as written, so prose and measured numbers cannot drift
apart by hand-editing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dkp.runtime.atomic import write_text


def replace_section(path: str | os.PathLike[str], name: str, body: str) -> Path:
    """Put ``body`` between the ``name`` markers of the markdown file ``path``."""
    path = Path(path)
    text = path.read_text()
    begin, end = f"<!-- begin: {name} -->", f"<!-- end: {name} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if len(pattern.findall(text)) != 1:
        raise ValueError(f"{path}: needs exactly one '{begin}' ... '{end}' section")
    return write_text(path, pattern.sub(lambda _: f"{begin}\n{body.strip()}\n{end}", text))
