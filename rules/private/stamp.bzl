"""stamp_setting: carries Bazel's `--stamp` to the rules whose `stamp` attribute is -1."""

StampSettingInfo = provider(
    doc = "Whether the build runs with `--stamp`.",
    fields = {"enabled": "True under `--stamp`."},
)

def _impl(ctx):
    return [StampSettingInfo(enabled = ctx.attr.enabled)]

stamp_setting = rule(
    implementation = _impl,
    doc = """Provides `StampSettingInfo`: `enabled` is a `select` on a
`config_setting` matching `--stamp` (a rule cannot read the flag itself).
`@strata//rules/private:stamp` is the one instance; the rules reach it through
their private `_stamp_setting` attribute.""",
    attrs = {"enabled": attr.bool(doc = "True under `--stamp` (a `select`).")},
)

def stamping(ctx):
    """Whether a rule with `stamp` and `_stamp_setting` attributes stamps.

    Args:
      ctx: the rule context.

    Returns:
      True for `stamp = 1`, False for `stamp = 0`, and for `stamp = -1` whether
      the build runs with `--stamp`.
    """
    if ctx.attr.stamp == 1:
        return True
    if ctx.attr.stamp == 0:
        return False
    return ctx.attr._stamp_setting[StampSettingInfo].enabled
