#!/bin/sh
# --workspace_status_command (.bazelrc): fixed STABLE_ keys for the stamping
# tests (//:stamped_test), so every build, output base and cache sees the same.
echo STABLE_STRATA_REVISION 0123abcd
echo STABLE_STRATA_VERSION 1.2.3
