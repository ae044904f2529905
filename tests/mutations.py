"""Line-level mutations of real inputs, the seeds of the text-format fuzz tests."""

from __future__ import annotations

import re

from hypothesis import strategies as st

BASIC_ACTIONS = ("drop", "dup", "flip", "cut", "garbage", "swap")


@st.composite
def mutated_lines(draw: st.DrawFn, seeds: list[str], vocabulary: list[str] | None = None) -> str:
    """A seed with one to six lines dropped, duplicated, swapped, cut or garbled.

    With a ``vocabulary``, two more mutations: a whitespace-separated token
    replaced by a word of it, and a line split in two.
    """
    actions = BASIC_ACTIONS + (("token", "split") if vocabulary else ())
    lines = draw(st.sampled_from(seeds)).splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(actions))
        if action == "drop":
            del lines[i]
        elif action == "dup":
            lines.insert(i, lines[i])
        elif action == "flip" and lines[i]:
            j = draw(st.integers(0, len(lines[i]) - 1))
            ch = draw(st.characters(codec="utf-8", exclude_categories=["Cs"]))
            lines[i] = lines[i][:j] + ch + lines[i][j + 1 :]
        elif action == "cut":
            lines = lines[:i]
        elif action == "garbage":
            lines.insert(i, draw(st.text(max_size=40)) + "\n")
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "token" and vocabulary:
            tokens = re.split(r"(\s+)", lines[i])
            if tokens:
                k = draw(st.integers(0, len(tokens) - 1))
                tokens[k] = draw(st.sampled_from(vocabulary))
                lines[i] = "".join(tokens)
        elif action == "split" and lines[i]:
            j = draw(st.integers(0, len(lines[i]) - 1))
            lines[i : i + 1] = [lines[i][:j] + "\n", lines[i][j:]]
    return "".join(lines)
