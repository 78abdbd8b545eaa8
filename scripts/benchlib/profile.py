"""perf record of a measured process, and the reports kept beside the data."""
import os
import shutil
import subprocess


def record(bench, pid, data, frequency, log):
    """Starts `perf record -g` of pid (every thread); stop it with bench.interrupt()."""
    return bench.start(["perf", "record", "-g", "-F", str(frequency), "-p", str(pid), "-o", data], log=log)


def _perf_report(data, args, demangle):
    text = subprocess.run(["perf", "report", "-i", data, "--stdio", *args], capture_output=True, text=True).stdout
    if demangle and shutil.which("swift"):
        text = subprocess.run(["swift", "demangle", "--simplified"], input=text, capture_output=True, text=True).stdout
    return text


def reports(data, folder, name):
    """NAME.self.txt (self time by symbol), NAME.dso.txt (by library), NAME.children.txt
    (inclusive), NAME.threads.txt (by thread) in folder."""
    files = {
        "self": (["--no-children", "--sort", "dso,symbol", "--percent-limit", "0.3", "-g", "none"], True),
        "dso": (["--no-children", "--sort", "dso", "-g", "none"], False),
        "children": (["--children", "--sort", "symbol", "--percent-limit", "2", "-g", "none"], True),
        "threads": (["--no-children", "--sort", "comm", "-g", "none"], False),
    }
    for kind, (args, demangle) in files.items():
        with open(os.path.join(folder, f"{name}.{kind}.txt"), "w") as f:
            f.write(_perf_report(data, args, demangle))


def top_lines(path, count, width=None):
    """The first `count` entries of a perf report (lines starting with spaces and a digit)."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            stripped = line.lstrip(" ")
            if stripped != line and stripped[:1].isdigit():
                out.append(line.rstrip("\n")[:width] if width else line.rstrip("\n"))
                if len(out) == count:
                    break
    return out


def summary(title, folder, name, symbols):
    """The Markdown block printed after a profiled run."""
    lines = ["", f"### Profile: {title}, self time by library", "```"]
    lines += top_lines(os.path.join(folder, f"{name}.dso.txt"), 12)
    lines += ["```", "Top symbols (self time):", "```"]
    lines += top_lines(os.path.join(folder, f"{name}.self.txt"), symbols, 200)
    lines.append("```")
    return "\n".join(lines)
