#!/usr/bin/env python3
"""Check clipmesh(1) against the binary it documents.

Each command and subcommand that --help lists needs a subsection named
"clipmesh CMD [SUB]", and each option of its --help must appear there.
--home and --help, which every command takes, must appear in the COMMANDS
introduction, and the global options in OPTIONS. The page footer must
name the binary's version, and groff must render the page without
warnings.

Usage: test_man.py CLIPMESH MANPAGE
"""

import re
import shutil
import subprocess
import sys

COMMON_OPTIONS = {"--home", "--help"}


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        number = self.passed + self.failed + 1
        if ok:
            self.passed += 1
            print(f"ok {number} - {what}")
        else:
            self.failed += 1
            print(f"not ok {number} - {what}")
            if detail:
                print(f"    {detail}")


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, check=False)


def listed(help_text, heading):
    """Return the names listed under HEADING ("commands:", ...)."""
    names, on = [], False
    for line in help_text.splitlines():
        if line == heading:
            on = True
        elif on and re.match(r"  [a-z]", line):
            names.append(line.split()[0])
        elif on:
            on = False
    return names


def help_options(help_text):
    """Return the options (long and short forms) of a command's help."""
    options = []
    lines = help_text.split("\noptions:\n", 1)
    if len(lines) < 2:
        return options
    for line in lines[1].splitlines():
        match = re.match(r"  (-[a-z], )?(--[a-z-]+)", line)
        if match:
            if match.group(1):
                options.append(match.group(1)[:2])
            options.append(match.group(2))
    return options


def render(page):
    """Render the page as plain text, one paragraph per line."""
    result = run("groff", "-man", "-Tascii", "-P-cbou", "-rLL=1000n",
                 page)
    if result.returncode != 0:
        sys.exit(f"FAIL: groff cannot render {page}: {result.stderr}")
    return result.stdout


def sections(text):
    """Split rendered text into {heading: body} by section and
    subsection headings (3 spaces of indent for a subsection)."""
    blocks, heading = {}, ""
    for line in text.splitlines():
        if re.match(r"([A-Z]| {3}\S)", line):
            heading = line.strip()
            blocks.setdefault(heading, "")
        else:
            blocks[heading] = blocks.get(heading, "") + line + "\n"
    return blocks


def has_word(text, word):
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])",
                     text) is not None


def find_block(blocks, name):
    """Return (heading, heading + body) of "clipmesh NAME ...", or None."""
    for heading, body in blocks.items():
        if heading == f"clipmesh {name}" or \
                heading.startswith(f"clipmesh {name} "):
            return heading, heading + "\n" + body
    return None


def check_rendering(checks, page):
    result = run("groff", "-man", "-Tutf8", "-ww", "-z", page)
    checks.check(result.returncode == 0 and result.stderr == "",
                 "groff renders the page without warnings",
                 result.stderr.strip())
    if shutil.which("man"):
        result = run("man", "-l", page)
        checks.check(result.returncode == 0 and "clipmesh" in result.stdout,
                     "man -l renders the page", result.stderr.strip())


def check_globals(checks, clipmesh, blocks, top_help):
    usage = top_help.splitlines()[0]
    options = set(re.findall(r"--[a-z-]+", usage)) | {"--help",
                                                      "--version"}
    body = blocks.get("OPTIONS", "")
    for option in sorted(options):
        checks.check(has_word(body, option),
                     f"global option {option} in OPTIONS")
    version = run(clipmesh, "--version").stdout.split()
    checks.check(len(version) == 2 and version[0] == "clipmesh",
                 "clipmesh --version prints name and version",
                 " ".join(version))
    intro = blocks.get("COMMANDS", "")
    for option in sorted(COMMON_OPTIONS):
        checks.check(has_word(intro, option),
                     f"common option {option} in COMMANDS")
    return version[-1] if version else ""


def check_command(checks, blocks, name, help_text):
    found = find_block(blocks, name)
    checks.check(found is not None, f"subsection for clipmesh {name}")
    if found is None:
        return
    heading, block = found
    for option in help_options(help_text):
        if option in COMMON_OPTIONS:
            continue
        checks.check(has_word(block, option),
                     f"{option} under '{heading}'")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    clipmesh, page = sys.argv[1], sys.argv[2]
    checks = Checks()

    check_rendering(checks, page)
    text = render(page)
    blocks = sections(text)
    top_help = run(clipmesh, "--help").stdout
    version = check_globals(checks, clipmesh, blocks, top_help)
    title = text.splitlines()[-1] if text.strip() else ""
    checks.check(has_word(title, version),
                 f"page footer names version {version}", title.strip())

    commands = listed(top_help, "commands:")
    checks.check(len(commands) > 0, "clipmesh --help lists commands")
    for command in commands:
        help_text = run(clipmesh, command, "--help").stdout
        subs = listed(help_text, "subcommands:")
        if not subs:
            check_command(checks, blocks, command, help_text)
        for sub in subs:
            sub_help = run(clipmesh, command, sub, "--help").stdout
            check_command(checks, blocks, f"{command} {sub}", sub_help)

    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
