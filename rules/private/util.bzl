"""Helpers shared by the rules of rules/private: shell quoting, runfiles paths, launchers, layout outputs."""

load("//rules:providers.bzl", "OciImageInfo")

def sh_quote(s):
    """Quotes `s` as one POSIX sh word.

    Args:
      s: any string.

    Returns:
      `s` in single quotes, each `'` in it written as `'\\''`.
    """
    return "'" + s.replace("'", "'\\''") + "'"

def runfiles_path(ctx, f):
    """The path of File `f` below a runfiles directory: `<workspace>/<path>`.

    Args:
      ctx: the rule context (for the workspace name).
      f: a File of this or another repository.

    Returns:
      `<repo>/<path>` for a file of another repository (its short_path is
      `../<repo>/<path>`), else `<workspace name>/<short_path>`.
    """
    p = f.short_path
    if p.startswith("../"):
        return p[3:]
    return ctx.workspace_name + "/" + p

_LAUNCHER = """\
#!/bin/sh
# Written by {rule}; runs outside the build (bazel run).
set -eu
rf() { # a runfiles path -> an absolute path
  for d in "${RUNFILES_DIR:-}" "$0.runfiles"; do
    if [ -n "$d" ] && [ -e "$d/$1" ]; then
      case $d in /*) echo "$d/$1" ;; *) echo "$PWD/$d/$1" ;; esac
      return 0
    fi
  done
  echo "{rule}: $1 is not in the runfiles of $0" >&2
  return 1
}
"""

def launcher(rule, body):
    """A `bazel run` launcher: a POSIX sh script that resolves runfiles.

    The script starts with `set -eu` and defines `rf PATH`, which prints the
    absolute path of runfiles path `PATH` (see `runfiles_path`), from
    `$RUNFILES_DIR` or `$0.runfiles`, and fails naming the rule otherwise.

    Args:
      rule: the rule's name, for comments and messages (`oci_load`).
      body: the rest of the script, run after the prelude.

    Returns:
      The script's text.
    """
    return _LAUNCHER.replace("{rule}", rule) + body

def layout_action(ctx, command, layout_name = None):
    """The outputs and first arguments of a strata command writing an OCI layout.

    Args:
      ctx: the rule context.
      command: `image` or `index`.
      layout_name: the layout directory's name, when not `<name>` (an image
        that `oci_image`'s attestation step copies into `<name>`).

    Returns:
      (layout, digest, args): the layout directory `<name>` (a tree artifact),
      the file `<name>.digest`, and an Args holding
      `COMMAND --quiet --out <name> --digest-file <name>.digest`.
    """
    layout = ctx.actions.declare_directory(layout_name or ctx.label.name)
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")
    args = ctx.actions.args()
    args.add(command)
    args.add("--quiet")  # the digest is in an output file; keep build logs clean
    args.add("--out", layout.path)
    args.add("--digest-file", digest)
    return layout, digest, args

def layout_result(ctx, layout, digest):
    """The providers of a rule whose outputs are an OCI layout and its digest file.

    Args:
      ctx: the rule context.
      layout: the layout directory (a tree artifact).
      digest: the file holding the digest, `sha256:...`.

    Returns:
      [DefaultInfo, OciImageInfo], both outputs also in the runfiles.
    """
    return [
        DefaultInfo(
            files = depset([layout, digest]),
            runfiles = ctx.runfiles(files = [layout, digest]),
        ),
        OciImageInfo(layout = layout, digest = digest),
    ]
