# Closure layering for nix/default.nix: Nix references graphs in, strata
# layer specs out. No bytes of any layer pass through here.
#
# This is the stand-in for the proposed `strata nix-layers` subcommand and
# takes the same inputs (see nix/default.nix, `closureSpecs`):
#
#   awk -f closure.awk -v maxLayers=N -v outDir=DIR [-v find=FIND] \
#       -v drop="P ..." -v excludeGraphs="F ..." GRAPH... [EXCLUDE-GRAPH...]
#
# - GRAPH files are what `exportReferencesGraph` writes: blocks of a store
#   path, its deriver (empty), a reference count n and n references. Every
#   path they hold is layered, except
#   - the paths in `drop` (their references stay), and
#   - every path of the graphs named in `excludeGraphs` (already in another
#     layer of the image).
# - popularity(p) = how many paths of the GRAPH files reach p through
#   references, p itself included; the paths are ordered by popularity, most
#   popular first, then by path (bytes; run with LC_ALL=C).
# - With k paths and N = maxLayers: if k <= N every path gets its own layer;
#   else the first N-1 paths get one each and the rest share the last.
# - Writes DIR/0001.json ... (bottom layer first), each a strata layer spec
#   {"version":1,"entries":[...]} with one entry per store path at its own
#   place (`tree` for a directory or file, `symlink` for a symlink). Writes
#   nothing when no path is left.
BEGIN {
  if (maxLayers !~ /^[0-9]+$/ || maxLayers + 0 < 1) fail("maxLayers must be a positive integer, not '" maxLayers "'")
  if (outDir == "") fail("outDir is not set")
  if (find == "") find = "find"
  nd = split(drop, d, " ")
  for (i = 1; i <= nd; i++) dropped[d[i]] = 1
  ne = split(excludeGraphs, e, " ")
  for (i = 1; i <= ne; i++) isExclude[e[i]] = 1
}

function fail(msg) {
  print "closure.awk: " msg > "/dev/stderr"
  failed = 1
  exit 1
}

FNR == 1 {
  if (state != "" && state != "path") fail("truncated graph before " FILENAME)
  state = "path"
  excl = (FILENAME in isExclude)
}
state == "path" {
  if ($0 !~ /^\//) fail(FILENAME ":" FNR ": not a store path: '" $0 "'")
  p = $0
  if (excl) excluded[p] = 1
  else if (!(p in node)) { node[p] = 1; nodes[++nn] = p }
  state = "deriver"
  next
}
state == "deriver" { state = "count"; next }
state == "count" {
  if ($0 !~ /^[0-9]+$/) fail(FILENAME ":" FNR ": not a reference count: '" $0 "'")
  left = $0 + 0
  state = left > 0 ? "ref" : "path"
  next
}
state == "ref" {
  if (!excl && $0 != p) { nref[p]++; ref[p, nref[p]] = $0 }
  if (--left == 0) state = "path"
  next
}

END {
  if (failed) exit 1
  if (state != "" && state != "path") fail("truncated graph in " FILENAME)
  # Popularity: a walk from every path, counting each path it reaches once.
  for (i = 1; i <= nn; i++) {
    top = 0
    stack[++top] = nodes[i]
    seen[nodes[i]] = i
    while (top > 0) {
      x = stack[top--]
      pop[x]++
      for (j = 1; j <= nref[x]; j++) {
        y = ref[x, j]
        if (seen[y] != i) { seen[y] = i; stack[++top] = y }
      }
    }
  }
  k = 0
  for (i = 1; i <= nn; i++) {
    p = nodes[i]
    if (!(p in dropped) && !(p in excluded)) sorted[++k] = p
  }
  # Insertion sort (closures are hundreds of paths, not millions).
  for (i = 2; i <= k; i++) {
    p = sorted[i]
    for (j = i - 1; j >= 1 && before(p, sorted[j]); j--) sorted[j + 1] = sorted[j]
    sorted[j + 1] = p
  }
  if (k == 0) exit 0
  findSymlinks()
  n = k < maxLayers ? k : maxLayers + 0
  for (l = 1; l <= n; l++) {
    file = outDir "/" sprintf("%04d", l) ".json"
    last = l < n ? l : k
    printf "{\"version\":1,\"entries\":[" > file
    for (i = l; i <= last; i++) printf "%s%s", (i > l ? "," : ""), entry(sorted[i]) > file
    print "]}" > file
    close(file)
  }
}

function before(a, b) {
  return pop[a] > pop[b] || (pop[a] == pop[b] && a < b)
}

# Store path names are [A-Za-z0-9+._?=-] only: nothing to escape in JSON.
function entry(p) {
  if (p in link) return "{\"type\":\"symlink\",\"path\":\"" substr(p, 2) "\",\"target\":\"" link[p] "\"}"
  return "{\"type\":\"tree\",\"path\":\"" substr(p, 2) "\",\"src\":\"" p "\"}"
}

# One `find` for all paths: which store paths are symlinks, and to what.
function findSymlinks(   cmd, line, tab) {
  cmd = find
  for (i = 1; i <= k; i++) cmd = cmd " " sorted[i]
  cmd = cmd " -maxdepth 0 -type l -printf '%p\\t%l\\n'"
  while ((cmd | getline line) > 0) {
    tab = index(line, "\t")
    link[substr(line, 1, tab - 1)] = substr(line, tab + 1)
  }
  if (close(cmd) != 0) fail("find failed on the closure's store paths")
}
