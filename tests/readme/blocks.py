#!/usr/bin/env python3
"""Runs the README's marked shell blocks and checks their shown output.

tests/readme/run.sh calls it (with the release strata first on PATH); .ci/run
runs that. The README's walkthroughs are run from the README itself, so they
cannot drift from what strata does.

THE MARKER CONVENTION (for anyone adding a runnable block to README.md)
-----------------------------------------------------------------------
Put an HTML comment on the line right before the opening fence:

    <!-- ci: run as=root,nobody -->
    ```sh
    $ strata layer --out a.tgz --descriptor a.json examples/hello
    sha256:0094f9023ff8b0bba795c857e177b22d0cc761bbb80c47ae28f66bd81b3c4050
    $ strata diff a.oci b.oci    # exit 1
    …
    18 differences
    ```

Options (space-separated, in the comment after `ci:`):
  run           execute the block (else the block is only a file, see `file=`)
  as=U1,U2      run once per user, each in a fresh directory: `root` (the
                invoking user), `nobody` (setpriv --reuid=nobody --regid=nogroup
                --clear-groups; only when the runner is root). Default: root.
  dir=repo      run in the repository root (e.g. `cargo run`); files the block
                creates (untracked by git) are removed afterwards. Default: a
                fresh temporary directory holding a copy of `examples/`, so
                `examples/hello` means what it means in a checkout.
  session=NAME  blocks with the same NAME share their directory, in README
                order (e.g. a `file=` block, then a `run` block using it).
  file=NAME     write the block's text to NAME in the session's directory.

A `run` block is either a transcript or a script:
  transcript  it has lines starting with `$ `: each is a command (a trailing
              `\\` continues it on the next line), the lines up to the next
              `$ ` are its expected stdout (stderr is shown only on failure).
              `…` inside a line matches any run of characters (shortened
              digests); a line that is only `…` matches any number of lines.
              A command must exit 0, or N when it ends with `# exit N`.
              `# ` comment lines before the first `$ ` are ignored.
  script      no `$ ` lines: the whole block runs with `bash -e` and must
              exit 0; its output is not checked.
Every command runs with umask 022, in one bash process per block and user (so
`cd` and variables carry over from one `$ ` line to the next).

Usage: blocks.py README.md [--require SECTION]...  (a required `## `/`### `/
`#### ` section must hold at least one `run` block: removing a marker fails).
"""

import argparse
import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

MARKER = re.compile(r"^<!-- ci: (.*) -->\s*$")
EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")
ELLIPSIS = "…"


class Block:
    def __init__(self, line, section, opts, text):
        self.line = line  # 1-based line of the marker
        self.section = section
        self.opts = opts
        self.text = text  # the lines between the fences

    def where(self):
        return f"README.md:{self.line} ({self.section})"


def parse(path):
    """The marked blocks of a Markdown file; a marker not before a fence is an error."""
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, section, i = [], "", 0
    while i < len(lines):
        line = lines[i]
        if re.match(r"^#{2,4} ", line):
            section = line.lstrip("#").strip()
        m = MARKER.match(line)
        if m:
            opts = {}
            for word in m.group(1).split():
                k, _, v = word.partition("=")
                if k not in ("run", "as", "dir", "session", "file"):
                    sys.exit(f"README.md:{i + 1}: unknown ci option {k!r}")
                opts[k] = v
            if i + 1 >= len(lines) or not lines[i + 1].startswith("```"):
                sys.exit(f"README.md:{i + 1}: a ci marker must be right before a ``` fence")
            j = i + 2
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if j == len(lines):
                sys.exit(f"README.md:{i + 1}: unterminated fence")
            blocks.append(Block(i + 1, section, opts, lines[i + 2 : j]))
            i = j
        i += 1
    return blocks


def transcript(text):
    """[(command, expected exit, [expected lines])] or None for a script block."""
    if not any(l.startswith("$ ") for l in text):
        return None
    steps, it = [], iter(enumerate(text))
    pending = None
    for _, l in it:
        if l.startswith("$ "):
            cmd = l[2:]
            while cmd.endswith("\\"):
                cmd = cmd + "\n" + next(it)[1]
            m = EXIT.search(cmd)
            pending = (cmd, int(m.group(1)) if m else 0, [])
            steps.append(pending)
        elif pending is None:
            if l.strip() and not l.startswith("# "):
                sys.exit(f"output before the first `$ ` command: {l!r}")
        else:
            pending[2].append(l)
    return steps


def line_matches(pattern, line):
    if ELLIPSIS not in pattern:
        return pattern == line
    rx = ".*".join(re.escape(p) for p in pattern.split(ELLIPSIS))
    return re.fullmatch(rx, line, re.S) is not None


def lines_match(expected, actual):
    """`…` lines match any number of lines; other lines match one line each."""

    @functools.lru_cache(maxsize=None)
    def m(i, j):
        if i == len(expected):
            return j == len(actual)
        if expected[i] == ELLIPSIS:
            return m(i + 1, j) or (j < len(actual) and m(i, j + 1))
        return j < len(actual) and line_matches(expected[i], actual[j]) and m(i + 1, j + 1)

    return m(0, 0)


class Runner:
    def __init__(self, root, keep):
        self.root = root
        self.keep = keep
        self.sessions = {}  # (session, user) -> directory
        self.failures = 0
        self.base = tempfile.mkdtemp(prefix="strata-readme.")
        os.chmod(self.base, 0o755)

    def directory(self, block, user):
        name = block.opts.get("session") or f"block{block.line}"
        key = (name, user)
        if key not in self.sessions:
            d = os.path.join(self.base, f"{name}-{user}")
            shutil.copytree(os.path.join(self.root, "examples"), os.path.join(d, "examples"))
            if user == "nobody":
                subprocess.run(["chown", "-R", "nobody:nogroup", d], check=True)
            self.sessions[key] = d
        return self.sessions[key]

    def argv(self, user, script_path):
        if user == "root":
            return ["bash", script_path]
        if user == "nobody":
            return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "bash", script_path]
        sys.exit(f"unknown user {user!r}")

    def fail(self, block, user, msg):
        self.failures += 1
        print(f"FAIL {block.where()} as {user}: {msg}", file=sys.stderr)

    def run(self, block):
        users = (block.opts.get("as") or "root").split(",")
        if "nobody" in users and os.geteuid() != 0:
            if os.environ.get("STRATA_REQUIRE_TOOLS") == "1":
                self.fail(block, "nobody", "running as another user needs root")
                return
            print(f"skip {block.where()} as nobody: not root")
            users = [u for u in users if u != "nobody"]
        for user in users:
            if block.opts.get("dir") == "repo":
                if user != "root":
                    sys.exit(f"{block.where()}: dir=repo runs as root only")
                self.run_in_repo(block)
            else:
                self.run_one(block, user, self.directory(block, user))

    def run_in_repo(self, block):
        def untracked():
            out = subprocess.run(
                ["git", "ls-files", "--others", "--exclude-standard", "--directory", "-z"],
                cwd=self.root, check=True, capture_output=True,
            ).stdout
            return set(p for p in out.decode().split("\0") if p)

        before = untracked()
        try:
            self.run_one(block, "root", self.root)
        finally:
            for p in sorted(untracked() - before):
                path = os.path.join(self.root, p.rstrip("/"))
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)

    def run_one(self, block, user, cwd):
        if "file" in block.opts:
            path = os.path.join(cwd, block.opts["file"])
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(block.text) + "\n")
            if user == "nobody":
                shutil.chown(path, "nobody", "nogroup")
            print(f"ok   {block.where()} as {user}: wrote {block.opts['file']}")
        if "run" not in block.opts:
            return
        steps = transcript(block.text)
        token = "@@readme-" + secrets.token_hex(8)
        script = ["umask 022", f"cd {shq(cwd)}"]
        if steps is None:
            script = ["set -e"] + script + block.text
        else:
            for n, (cmd, _, _) in enumerate(steps):
                script.append(f"printf '\\n{token} {n}\\n'")
                script.append(cmd)
                script.append(f"printf '\\n{token} {n} exit %s\\n' \"$?\"")
        fd, script_path = tempfile.mkstemp(prefix="block.", suffix=".sh", dir=self.base)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(script) + "\n")
        os.chmod(script_path, 0o644)
        env = dict(os.environ)
        if user == "nobody":
            env["HOME"] = cwd
        proc = subprocess.run(self.argv(user, script_path), env=env, capture_output=True)
        out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
        if steps is None:
            if proc.returncode != 0:
                self.fail(block, user, f"exit {proc.returncode}\n{out}{err}")
            else:
                print(f"ok   {block.where()} as {user}: script ran")
            return
        # Split stdout at the markers: command n's output is between "token n" and "token n exit".
        got = {}
        for n in range(len(steps)):
            m = re.search(
                rf"\n{token} {n}\n(.*?)\n?\n{token} {n} exit (\d+)\n", out, re.S
            )
            if not m:
                self.fail(block, user, f"`{steps[n][0]}` did not finish\n{out}{err}")
                return
            got[n] = (m.group(1), int(m.group(2)))
        for n, (cmd, want_exit, want) in enumerate(steps):
            text, code = got[n]
            actual = text.split("\n") if text else []
            if code != want_exit:
                self.fail(block, user, f"`{cmd}` exited {code}, not {want_exit}\n{text}\n{err}")
                return
            if not lines_match(want, actual):
                self.fail(
                    block, user,
                    f"`{cmd}`: output differs from the README\n--- README\n"
                    + "\n".join(want) + "\n--- actual\n" + "\n".join(actual) + f"\n--- stderr\n{err}",
                )
                return
        print(f"ok   {block.where()} as {user}: {len(steps)} commands, output as shown")

    def cleanup(self):
        if self.keep:
            print(f"kept {self.base}")
        else:
            shutil.rmtree(self.base, ignore_errors=True)


def shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def self_test():
    """The matcher fails where it must (run by run.sh before the README)."""
    cases = [
        (["a", "b"], ["a", "b"], True),
        (["a", "b"], ["a", "c"], False),
        (["a"], ["a", "b"], False),  # an extra line is a difference
        (["a", "b"], ["a"], False),  # so is a missing one
        (["sha256:47e3…2ca6"], ["sha256:47e3620730a3e4b38e2ca6"], True),
        (["sha256:47e3…2ca6"], ["sha256:47e4620730a3e4b38e2ca6"], False),
        (["x…"], ["x"], True),
        (["a", "…", "z"], ["a", "z"], True),
        (["a", "…", "z"], ["a", "b", "c", "z"], True),
        (["a", "…", "z"], ["a", "b", "c"], False),
        (["a.b"], ["axb"], False),  # no regex syntax
    ]
    for want, got, ok in cases:
        if lines_match(want, got) != ok:
            sys.exit(f"blocks.py self-test FAILED: {want} vs {got} should {'' if ok else 'not '}match")
    steps = transcript(["# c", "$ a \\", "  b    # exit 1", "out", "$ c"])
    if steps != [("a \\\n  b    # exit 1", 1, ["out"]), ("c", 0, [])]:
        sys.exit(f"blocks.py self-test FAILED: transcript parsed as {steps}")
    print(f"blocks.py self-test: ok ({len(cases)} matcher cases)")


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("readme")
    ap.add_argument("--require", action="append", default=[], help="a section that must hold a run block")
    ap.add_argument("--keep", action="store_true", help="keep the directories the blocks ran in")
    a = ap.parse_args()
    root = os.path.dirname(os.path.abspath(a.readme))
    blocks = parse(a.readme)
    runner = Runner(root, a.keep)
    try:
        for b in blocks:
            runner.run(b)
    finally:
        runner.cleanup()
    ran = {b.section for b in blocks if "run" in b.opts}
    for s in a.require:
        if s not in ran:
            runner.failures += 1
            print(f"FAIL README.md: section {s!r} has no `<!-- ci: run ... -->` block", file=sys.stderr)
    n = sum(1 for b in blocks if "run" in b.opts)
    if runner.failures:
        sys.exit(f"{runner.failures} README block(s) failed")
    print(f"README: {n} blocks ran as shown")


if __name__ == "__main__":
    main()
