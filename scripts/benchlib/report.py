"""The one BENCHMARKS.md writer.

Each benchmark owns one section of BENCHMARKS.md, between `<!-- NAME:begin -->` and
`<!-- NAME:end -->`: its description (how it measures, against which ceiling, the command
that reproduces it), then its runs, newest first, each between `<!-- NAME:run -->` and
`<!-- /NAME:run -->`. A new run replaces the section: the description as the harness
has it now, the new run, and the newest earlier runs up to --keep-runs in all. Everything
outside the section is left as it is; a missing section is appended, a missing file created.
"""
import os

from .core import ROOT

FILE = os.path.join(ROOT, "BENCHMARKS.md")

HEADER = """# Benchmarks

Each benchmark measures a Tributary component **and a ceiling in the same run, on the same
machine, with the same load generator**. The ratio to that ceiling is what counts: the
machines these run on are shared and noisy (2 cores, neighbours), so absolute numbers move
from run to run and are only comparable inside one run. Each section names the command that
reproduces it.
"""


def run_entry(name, lines, reproduce):
    """A run, between its markers: its lines, then the command that reproduces it."""
    body = "\n".join(lines).rstrip("\n")
    return f"<!-- {name}:run -->\n{body}\n\nReproduce this run: `{reproduce}`\n<!-- /{name}:run -->\n"


def printable(entry):
    """A run entry without its markers, for stdout."""
    return "".join(entry.splitlines(keepends=True)[1:-1])


def earlier_runs(text, name):
    """The run entries of NAME's section, newest first, each as its lines."""
    runs, current, inside = [], None, False
    for line in text.splitlines(keepends=True):
        if f"<!-- {name}:begin -->" in line:
            inside = True
        elif f"<!-- {name}:end -->" in line:
            inside = False
        elif inside and f"<!-- {name}:run -->" in line:
            current = [line]
            runs.append(current)
        elif inside and current is not None:
            current.append(line)
            if f"<!-- /{name}:run -->" in line:
                current = None
    return ["".join(r) for r in runs]


def section(name, description, entry, earlier, keep_runs):
    """The whole section: description (from its `## ` title on), the new run, the kept runs."""
    parts = [f"<!-- {name}:begin -->\n", description.rstrip("\n") + "\n\n", entry]
    for old in earlier[:max(0, keep_runs - 1)]:
        parts.append("\n" + old)
    parts.append(f"<!-- {name}:end -->\n")
    return "".join(parts)


def write(name, description, entry, keep_runs, path=FILE):
    """Replaces NAME's section of BENCHMARKS.md with the description, `entry` (a run_entry)
    and the newest earlier runs; returns the path."""
    text = open(path).read() if os.path.exists(path) else HEADER
    new = section(name, description, entry, earlier_runs(text, name), keep_runs)
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin in text:
        out, skipping = [], False
        for line in text.splitlines(keepends=True):
            if begin in line:
                out.append(new)
                skipping = True
            elif end in line:
                skipping = False
            elif not skipping:
                out.append(line)
        result = "".join(out)
    else:
        result = text + ("" if text.endswith("\n") else "\n") + "\n" + new
    with open(path, "w") as f:
        f.write(result)
    return path
