#!/usr/bin/env bash
# Re-fetch the console's charting library, uPlot, from the npm registry and check it.
# The committed files under app/console/static/vendor/ are what ships (no CDN: the console
# works air-gapped); this script only proves they are the published package, byte for
# byte: it packs the exact version, checks the tarball's sha256, and compares (or, with
# --update, copies) the two files and the licence.
set -euo pipefail
VERSION=1.6.32
TARBALL_SHA256=4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d
DEST=app/console/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "uplot@$VERSION" >/dev/null)
echo "$TARBALL_SHA256  $work/uplot-$VERSION.tgz" | sha256sum -c --quiet -
tar -xzf "$work/uplot-$VERSION.tgz" -C "$work"
pairs=("dist/uPlot.iife.min.js:uPlot.iife.min.js" "dist/uPlot.min.css:uPlot.min.css" "LICENSE:uPlot.LICENSE")
for pair in "${pairs[@]}"; do
  src="$work/package/${pair%%:*}" dst="$DEST/${pair##*:}"
  if [ "${1:-}" = "--update" ]; then
    cp "$src" "$dst"
  elif ! cmp -s "$src" "$dst"; then
    echo "vendor-uplot: $dst differs from uplot@$VERSION (run: bash scripts/vendor-uplot.sh --update)" >&2
    exit 1
  fi
done
echo "vendor-uplot: $DEST matches uplot@$VERSION (tarball sha256 $TARBALL_SHA256)"
