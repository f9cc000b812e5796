#!/usr/bin/env python3
"""Writes the last `make bench` run into docs/figures.md, between its markers, as tables: the run's
date and machine, then each group of the bench's output with its rows (what was measured, the
rate, and the ratio to the peer measured before it in the same run), its goals and its notes.
The figures are produced, not edited by hand: make bench runs this after every run.

    scripts/figures.py bench-results/latest.txt docs/figures.md
"""
import datetime
import os
import re
import sys

BEGIN = "<!-- make bench writes from here: scripts/figures.py -->"
END = "<!-- make bench writes up to here -->"
RATE = re.compile(r"^\s+(?P<what>.+?)\s{2,}(?P<value>[\d.]+) /s(?:\s+x(?P<ratio>[\d.]+))?$")


def cell(text):
    return text.replace("|", "\\|").strip()


def render(lines, mtime):
    header = {"date": mtime + " (the time of its output)"}
    while lines and lines[0].startswith("# "):
        key, _, value = lines.pop(0)[2:].partition(": ")
        header[key] = value
    out = [
        f"Run: {header.get('date', 'not recorded')}; machine: {header.get('machine', 'not recorded')}; "
        f"build: {header.get('build', 'release')}.",
        "",
    ]
    blocks, block = [], []
    for line in lines + [""]:
        if line.strip():
            block.append(line.rstrip())
        elif block:
            blocks.append(block)
            block = []
    for block in blocks:
        rows, peer = [], None
        for line in block:
            match = RATE.match(line)
            if match:
                if match["ratio"] is None:
                    peer = match["what"]
                    rows.append(f"| {cell(match['what'])} | {match['value']} /s | peer |")
                else:
                    rows.append(f"| {cell(match['what'])} | {match['value']} /s | x{match['ratio']} of {cell(peer or 'the row above')} |")
                continue
            if rows:
                out += ["| measured | rate | ratio |", "| --- | --- | --- |"] + rows + [""]
                rows = []
            text = line.strip()
            if text.startswith("goal:"):
                out += [f"**{cell(text)}**", ""]
            elif line.startswith(" "):
                out += [f"- {text}"]
            else:
                out += ["", f"### {text}", ""]
        if rows:
            out += ["| measured | rate | ratio |", "| --- | --- | --- |"] + rows
        out.append("")
    return "\n".join(re.sub(r"\n{3,}", "\n\n", "\n".join(out)).split("\n"))


def main():
    source, target = sys.argv[1], sys.argv[2]
    lines = open(source, encoding="utf-8").read().splitlines()
    mtime = datetime.datetime.fromtimestamp(os.path.getmtime(source), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    document = open(target, encoding="utf-8").read()
    if BEGIN not in document or END not in document:
        sys.exit(f"figures: {target} lacks its markers ({BEGIN} ... {END})")
    head, rest = document.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(target, "w", encoding="utf-8") as out:
        out.write(head + BEGIN + "\n\n" + render(lines, mtime).strip() + "\n\n" + END + tail)


if __name__ == "__main__":
    main()
