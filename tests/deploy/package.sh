#!/usr/bin/env bash
# The Debian package (scripts/package), run by CTest as deploy_package with the build under test: it holds the
# binary, the systemd units and the settings file (a conffile, 0640) and the docs; the binary it holds runs; each of
# its dependencies is a Debian package (installed here, since the build's binary runs here), from the libraries the
# binary names; its postinst makes the system user. The container image (deploy/container/Containerfile) installs
# this package.
# Usage: tests/deploy/package.sh LIFTOFF_BINARY
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BINARY=$(realpath "${1:?usage: package.sh LIFTOFF_BINARY}")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $1"; exit 1; }
deb=$("$ROOT/scripts/package" --binary "$BINARY" --out "$WORK" --compression none)
[[ -f $deb ]] || fail "scripts/package made no package"
contents=$(dpkg-deb --contents "$deb")
for entry in "-rwxr-xr-x root/root .* ./usr/bin/liftoff" "-rw-r--r-- root/root .* ./lib/systemd/system/liftoff@.service" \
  "-rw-r--r-- root/root .* ./lib/systemd/system/liftoff-backup-full@.timer" \
  "-rw-r----- root/root .* ./etc/liftoff/liftoff.env" "-rw-r--r-- root/root .* ./usr/share/doc/liftoff/operations.md"; do
  grep -qE -- "^$entry$" <<<"$contents" || fail "the package lacks $entry: $contents"
done
[[ $(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles) == /etc/liftoff/liftoff.env ]] ||
  fail "/etc/liftoff/liftoff.env is not a conffile"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst | grep -q "adduser --system --group" ||
  fail "the postinst does not make the liftoff user"
dpkg-deb -x "$deb" "$WORK/root"
"$WORK/root/usr/bin/liftoff" version | grep -q "^liftoff " || fail "the packaged binary does not run"
depends=$(dpkg-deb --field "$deb" Depends)
needed=$(readelf -d "$BINARY" | grep -c '(NEEDED)')
for package in $(tr ',' '\n' <<<"$depends" | sed 's/(.*//; s/ //g'); do
  dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q "install ok installed" ||
    fail "the dependency $package is not a Debian package installed here"
done
grep -q "^COPY liftoff_\*.deb" "$ROOT/deploy/container/Containerfile" ||
  fail "deploy/container/Containerfile does not install the package"
echo "PASS: $(basename "$deb"), $(stat -c %s "$deb") bytes; $((needed)) libraries named, Depends: $depends"
