#!/bin/bash
# Configures the guest's root tree (argument 1) as a farm host before its farm
# is set up: host01.farm at 10.10.60.1 on bridge br0 (QEMU's user network,
# which reaches nothing outside this machine), root over SSH with the key of
# argument 2, serial console, and this machine's node (argument 3), since
# the suite's nodejs is older than farmclone needs.
set -euo pipefail
tree=$1 pubkey=$2 node=$3

echo host01 > "$tree/etc/hostname"
cat > "$tree/etc/hosts" <<'HOSTS'
127.0.0.1	localhost
10.10.60.1	host01.farm	host01
10.10.60.254	cluster.farm	cluster
HOSTS
# BIND on the host answers for zone farm; nothing else is reachable.
printf 'search farm\nnameserver 127.0.0.1\n' > "$tree/etc/resolv.conf"
echo 'LABEL=root / ext4 errors=remount-ro 0 1' > "$tree/etc/fstab"

mkdir -p "$tree/etc/systemd/network"
cat > "$tree/etc/systemd/network/10-br0.netdev" <<'NET'
[NetDev]
Name=br0
Kind=bridge
NET
cat > "$tree/etc/systemd/network/20-eth0.network" <<'NET'
[Match]
Name=eth0

[Network]
Bridge=br0
NET
cat > "$tree/etc/systemd/network/30-br0.network" <<'NET'
[Match]
Name=br0

[Network]
Address=10.10.60.1/24
Gateway=10.10.60.2
ConfigureWithoutCarrier=yes
NET
chroot "$tree" systemctl enable systemd-networkd.service >/dev/null 2>&1
# Slow guest, no outside network: nothing waits for a network to be "online", no periodic apt.
for unit in systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
	chroot "$tree" systemctl disable "$unit" >/dev/null 2>&1 || true
done

install -d -m 700 "$tree/root/.ssh"
install -m 600 "$pubkey" "$tree/root/.ssh/authorized_keys"
cat > "$tree/etc/ssh/sshd_config.d/farmclone-test.conf" <<'SSH'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
SSH
# Root can log in on the serial console without a password (the guest is reachable from this machine only).
chroot "$tree" passwd -d root >/dev/null

install -m 755 "$node" "$tree/usr/local/bin/node"
