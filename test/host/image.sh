#!/bin/bash
# Builds the farm-host guest image from Debian packages (mmdebstrap), cached
# under $FARMCLONE_TEST_CACHE (default /var/cache/farmclone-test/) in a
# directory named by a hash of this script, guest-base.sh and packages.txt: rebuilt when
# absent or stale. Prints the image directory on its last line.
#
# The image directory holds: root.raw (ext4, the whole disk, no partition
# table), vmlinuz and initrd.img for QEMU's -kernel boot, and id_ed25519 (the
# SSH key that logs into the guest as root, on a loopback port forward only).
#
# Debian packages come from this machine's apt sources, passed to mmdebstrap
# as they are.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${FARMCLONE_TEST_CACHE:-/var/cache/farmclone-test}
suite=bookworm
root_size=6G

key=$(cat "$here/image.sh" "$here/guest-base.sh" "$here/packages.txt" | sha256sum | cut -c1-16)
image="$cache/image-$key"
if [ -f "$image/ready" ]; then
	echo "image: cached $image" >&2
	echo "$image"
	exit 0
fi

[ "$(id -u)" = 0 ] || { echo "image: building the guest image needs root" >&2; exit 1; }
for program in mmdebstrap mkfs.ext4 ssh-keygen; do
	command -v "$program" >/dev/null || { echo "image: $program is missing (apt-get install mmdebstrap e2fsprogs openssh-client)" >&2; exit 1; }
done

sources=()
for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -s "$file" ] && grep -qv '^\s*\(#\|$\)' "$file" && sources+=("$file")
done
[ ${#sources[@]} -gt 0 ] || { echo "image: no apt sources on this machine" >&2; exit 1; }

started=$(date +%s)
mkdir -p "$cache"
work=$(mktemp -d "$cache/build-XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/tree"

ssh-keygen -q -t ed25519 -N '' -C farmclone-test -f "$work/id_ed25519"

packages=$(grep -v '^\s*\(#\|$\)' "$here/packages.txt" | tr '\n' ',' | sed 's/,$//')
echo "image: mmdebstrap $suite into $tree (sources: ${sources[*]})" >&2
# Only the apt sources that name bookworm suites are this machine's Debian ones.
mmdebstrap --variant=apt --mode=root --format=directory \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
	--include="$packages" \
	"$suite" "$tree" "${sources[@]}" >&2

# The guest's own configuration: what any farm host has before the farm is set up on it.
"$here/guest-base.sh" "$tree" "$work/id_ed25519.pub" "$(command -v node)"

cp "$tree"/boot/vmlinuz-* "$work/vmlinuz"
cp "$tree"/boot/initrd.img-* "$work/initrd.img"
truncate -s "$root_size" "$work/root.raw"
mkfs.ext4 -q -L root -d "$tree" "$work/root.raw"
rm -rf "$tree"
echo "$(( $(date +%s) - started ))" > "$work/build-seconds"
touch "$work/ready"
rm -rf "$image"
mv "$work" "$image"
trap - EXIT
echo "image: built $image in $(cat "$image/build-seconds") s" >&2
echo "$image"
