#!/usr/bin/env python3
"""The test worker's sandbox: an action that sees nothing of the host but its inputs.

TEST SCAFFOLDING (tests/remote/worker.py uses it). An action whose program is
one of its declared inputs and an ELF executable (every strata action: the
toolchain's binary) runs in a fresh mount and PID namespace
(`unshare --mount --pid --fork`), chrooted into an empty tmpfs that holds only

  /work                   the staged input root (read-write: outputs go there)
  the C runtime           exactly the files `ldd PROGRAM` names (the dynamic
                          loader, libc.so.6, libgcc_s.so.1), each bind-mounted
                          read-only at its path; nothing for a static binary

No /bin, /usr, /etc, /tmp, /dev or /proc: no shell, tar or Python. So "the
remote worker needs nothing installed but the C runtime" is shown by running
the actions, not assumed. Other actions (Bazel's test wrapper scripts, a
genrule's /bin/bash) run on the host, as a worker with tools installed would
run them; the worker log says which way each lease ran.

`sandbox.py --self-test` shows the sandbox is empty: a copy of the host's
/bin/sh, declared as the only input, sees `/lib /lib64 /work` at its root and
cannot exec /bin/sh, ls or cat.

Inner mode (run by `unshare`, as root in the new namespaces):
`sandbox.py --enter ROOT TMPFS CWD LIB... -- ARGV...`.
"""

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile

MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(src, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    if _libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount {src} on {target}: {os.strerror(e)}")


def is_elf_input(root, cwd, program):
    """True when `program` is a relative path to an ELF file inside the input root."""
    if os.path.isabs(program):
        return False
    path = os.path.realpath(os.path.join(cwd, program))
    if not path.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def libraries(program):
    """The absolute paths `ldd` names for an ELF program ([] for a static one)."""
    proc = subprocess.run(["ldd", program], capture_output=True, text=True)
    if proc.returncode != 0 and "not a dynamic executable" in proc.stdout + proc.stderr:
        return []
    if proc.returncode != 0:
        raise RuntimeError(f"ldd {program}: {proc.stderr.strip()}")
    libs = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            i = parts.index("=>")
            if i + 1 < len(parts) and parts[i + 1].startswith("/"):
                libs.append(parts[i + 1])
            elif "not" in parts[i + 1 :]:
                raise RuntimeError(f"ldd {program}: {line.strip()}")
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])  # the dynamic loader
    return libs


def run(root, cwd, argv, env, timeout, scratch):
    """Runs argv in the sandbox; returns (exit code, stdout, stderr, libs)."""
    program = os.path.join(cwd, argv[0])
    libs = libraries(program)
    tmpfs = tempfile.mkdtemp(prefix="sandbox.", dir=scratch)
    rel = os.path.relpath(cwd, root)
    cmd = ["unshare", "--mount", "--pid", "--fork", "--kill-child"]
    if os.geteuid() != 0:
        cmd += ["--user", "--map-root-user"]
    cmd += [sys.executable, os.path.abspath(__file__), "--enter", root, tmpfs, rel, *libs, "--", *argv]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return proc.returncode, proc.stdout, proc.stderr, libs
    finally:
        os.rmdir(tmpfs)


def enter(root, tmpfs, rel, libs, argv):
    """In the new namespaces: build the root, chroot, exec. Never returns."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
    _mount("sandbox", tmpfs, "tmpfs", 0, "mode=0755")
    work = os.path.join(tmpfs, "work")
    os.mkdir(work)
    _mount(root, work, None, MS_BIND | MS_REC)
    for lib in libs:
        target = tmpfs + lib
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "w").close()
        _mount(os.path.realpath(lib), target, None, MS_BIND)
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    _mount(None, tmpfs, None, MS_REMOUNT | MS_RDONLY, "mode=0755")  # only /work is writable
    os.chroot(tmpfs)
    os.chdir(os.path.join("/work", rel))
    try:
        os.execve(argv[0], argv, os.environ)
    except OSError as e:
        sys.stderr.write(f"sandbox: cannot run {argv[0]}: {e.strerror}\n")
        os._exit(127)


def self_test():
    """The sandbox holds nothing but the inputs and the libraries ldd names."""
    scratch = tempfile.mkdtemp(prefix="sandbox-test.")
    try:
        root = os.path.join(scratch, "root")
        os.makedirs(os.path.join(root, "pkg"))
        shutil.copy(os.path.realpath("/bin/sh"), os.path.join(root, "pkg", "sh"))
        script = 'echo in: $(pwd); echo root: /*; echo libs: $(for f in /lib*/* /lib*/*/*; do [ -f "$f" ] && echo "$f"; done); ls; cat /etc/passwd; exec /bin/sh -c "echo escaped"'
        code, out, err, libs = run(root, root, ["pkg/sh", "-c", script], {}, 60, scratch)
        out, err = out.decode(), err.decode()
        print(f"self-test: {os.path.realpath('/bin/sh')} as the only input, libs {' '.join(libs)}")
        print("  stdout: " + out.strip().replace("\n", "\n          "))
        print("  stderr: " + err.strip().replace("\n", "\n          "))
        print(f"  exit {code}")
        want_root = "root: /lib /lib64 /work" if any(l.startswith("/lib64/") for l in libs) else None
        problems = []
        if "in: /work" not in out:
            problems.append("the action did not run in /work")
        if want_root and want_root not in out:
            problems.append(f"the sandbox root is not just {want_root[6:]}")
        if "escaped" in out or code == 0:
            problems.append("exec /bin/sh worked")
        for tool in ("ls", "cat", "/bin/sh"):
            if f"{tool}: not found" not in err:
                problems.append(f"no '{tool}: not found'")
        libs_line = next((l for l in out.splitlines() if l.startswith("libs: ")), "")
        if sorted(libs_line.split()[1:]) != sorted(libs):
            problems.append(f"the sandbox's libraries ({libs_line}) are not ldd's ({' '.join(libs)})")
        if problems:
            sys.exit("sandbox self-test FAILED: " + "; ".join(problems))
        print("sandbox self-test: ok (nothing of the host but ldd's libraries)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--enter":
        sep = sys.argv.index("--")
        root, tmpfs, rel, *libs = sys.argv[2:sep]
        enter(root, tmpfs, rel, libs, sys.argv[sep + 1 :])
    elif sys.argv[1:] == ["--self-test"]:
        self_test()
    else:
        sys.exit(__doc__)
