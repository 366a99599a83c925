#!/bin/bash
# Runs inside the farm-host guest (as root, from test/kit/guest.ts), once per
# image: makes it the seed's farm host. VG `all` on the second disk, the source
# VM's disk (the third, read-only disk) copied to an LV, BIND serving zone farm,
# dhcpd, Shorewall, nginx, a one-node Ganeti cluster, and the source instance
# adopting that LV (never started: only its disk is cloned).
set -euo pipefail
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
step() { echo "[farm $(date -u +%T)] $*"; }

# Under load Ganeti's job daemon answers late: 'job N failed to start: GenericError "... Getting the lockfile
# of the client: user error (Timeout in reading a response)"' (seen with stress-ng --cpu 2 beside the guest).
# Nothing of that job ran, so it is asked again, as farmclone does (b87803e).
ganeti() {
	local attempt output
	for attempt in 1 2 3 4 5 6; do
		if output=$("$@" 2>&1); then
			printf '%s\n' "$output"
			return 0
		fi
		printf '%s\n' "$output" >&2
		grep -q 'failed to start' <<<"$output" || return 1
		step "$1 $2: the job did not start (attempt $attempt), asked again in 15 s"
		sleep 15
	done
	return 1
}

# The source VM's disk before adoption; Ganeti renames it <uuid>.disk0.
source_lv=gallifrey-source
source_size=1024M  # Ganeti's default instance policy refuses disks under 1024 MiB.

step "VG all on /dev/vdb, the source VM's disk from /dev/vdc"
pvcreate -q /dev/vdb
vgcreate -q all /dev/vdb
lvcreate -q -y -L "$source_size" -n "$source_lv" all
dd if=/dev/vdc of="/dev/all/$source_lv" bs=1M conv=sparse,fsync status=none

step "network: net0, the host's public side (a dummy with the failover address)"
cat > /etc/systemd/network/10-net0.netdev <<'NET'
[NetDev]
Name=net0
Kind=dummy
NET
cat > /etc/systemd/network/30-net0.network <<'NET'
[Match]
Name=net0

[Network]
Address=192.0.2.10/24
NET
# Now as well: networkctl needs D-Bus, which the host does not have.
ip link show net0 >/dev/null 2>&1 || ip link add net0 type dummy
ip -4 addr show net0 | grep 192.0.2.10 >/dev/null || ip addr add 192.0.2.10/24 dev net0
ip link set net0 up

step "BIND: zone farm"
cat > /etc/bind/db.farm <<'ZONE'
; Zone "farm" of the farm host.
$TTL 3600
@	IN	SOA	host01.farm. hostmaster.farm. (
			2011072501	; serial
			3600		; refresh
			900		; retry
			604800		; expire
			3600 )		; negative cache TTL
;
@	IN	NS	host01.farm.
host01	IN	A	10.10.60.1
cluster	IN	A	10.10.60.254
gallifrey.xivo.vm	IN	A	10.10.60.5
skaro.xivo.vm	IN	A	10.10.60.7
mondas.xivo.vm	IN	A	10.10.60.8
ZONE
chown root:bind /etc/bind/db.farm
cat > /etc/bind/named.conf.local <<'CONF'
zone "farm" {
	type master;
	file "/etc/bind/db.farm";
};
CONF
cat > /etc/bind/named.conf.options <<'CONF'
options {
	directory "/var/cache/bind";
	listen-on port 53 { 127.0.0.1; 10.10.60.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
CONF
named-checkconf
systemctl restart named
for _ in $(seq 120); do [ "$(dig +short @127.0.0.1 gallifrey.xivo.vm.farm A)" = 10.10.60.5 ] && break; sleep 1; done
[ "$(dig +short @127.0.0.1 gallifrey.xivo.vm.farm A)" = 10.10.60.5 ]

step "dhcpd"
cat > /etc/dhcp/dhcpd.conf <<'CONF'
# dhcpd.conf of the farm host.
ddns-update-style none;
option domain-name "farm";
option domain-name-servers 10.10.60.1;
default-lease-time 600;
max-lease-time 7200;
authoritative;
log-facility local7;

subnet 10.10.60.0 netmask 255.255.255.0 {
	range 10.10.60.100 10.10.60.200;
	option routers 10.10.60.1;
	option broadcast-address 10.10.60.255;
}

host gallifrey.xivo.vm.farm {
	hardware ethernet 52:54:a1:3c:5e:01;
	fixed-address 10.10.60.5;
	option subnet-mask 255.255.255.0;
}

host skaro.xivo.vm.farm {
	hardware ethernet 52:54:0b:7d:22:9f;
	fixed-address 10.10.60.7;
	option subnet-mask 255.255.255.0;
}
CONF
sed -i 's/^INTERFACESv4=.*/INTERFACESv4="br0"/' /etc/default/isc-dhcp-server
dhcpd -t -cf /etc/dhcp/dhcpd.conf
systemctl restart isc-dhcp-server
for _ in $(seq 60); do [ -s /run/dhcpd.pid ] && kill -0 "$(cat /run/dhcpd.pid)" 2>/dev/null && break; sleep 1; done
kill -0 "$(cat /run/dhcpd.pid)"

step "Shorewall: net on net0, loc on br0, the existing DNAT to gallifrey"
# The package leaves its defaults as .dpkg-new when /etc/shorewall exists already.
for file in /etc/shorewall/*.dpkg-new; do [ -e "$file" ] && mv "$file" "${file%.dpkg-new}"; done
[ -e /etc/shorewall/shorewall.conf ] || cp /usr/share/shorewall/configfiles/shorewall.conf /etc/shorewall/
cat > /etc/shorewall/params <<'CONF'
IP_FAILOVER=192.0.2.10
VM_GALLIFREY_XIVO=10.10.60.5
CONF
cat > /etc/shorewall/zones <<'CONF'
#ZONE	TYPE	OPTIONS
fw	firewall
net	ipv4
loc	ipv4
CONF
cat > /etc/shorewall/interfaces <<'CONF'
?FORMAT 2
#ZONE	INTERFACE	OPTIONS
net	net0		tcpflags,nosmurfs,routefilter,logmartians,sourceroute=0
loc	br0		bridge,dhcp,tcpflags,nosmurfs,logmartians
CONF
cat > /etc/shorewall/policy <<'CONF'
#SOURCE	DEST	POLICY	LOGLEVEL
$FW	all	ACCEPT
loc	net	ACCEPT
net	all	DROP	$LOG_LEVEL
# THE FOLLOWING POLICY MUST BE LAST
all	all	REJECT	$LOG_LEVEL
CONF
cat > /etc/shorewall/rules <<'CONF'
#ACTION		SOURCE		DEST		PROTO	DEST	SOURCE		ORIGINAL
#							PORT	PORT(S)		DEST
Invalid(DROP)	net		all		tcp
SSH(ACCEPT)	net		$FW
SSH(ACCEPT)	loc		$FW
DNS(ACCEPT)	loc		$FW
Ping(ACCEPT)	loc		$FW
HTTP(ACCEPT)	net		$FW
ACCEPT		loc		$FW		tcp	1811,5080,11000:14999
ACCEPT		$FW		loc

DNAT		net		loc:$VM_GALLIFREY_XIVO:22	tcp	22005	-	$IP_FAILOVER
CONF
sed -i 's/^startup=.*/startup=1/' /etc/default/shorewall
sed -i 's/^IP_FORWARDING=.*/IP_FORWARDING=On/' /etc/shorewall/shorewall.conf
shorewall -q check
systemctl enable -q shorewall
systemctl restart shorewall
shorewall status | grep "^Shorewall is running" >/dev/null

step "nginx"
nginx -t -c /etc/nginx/nginx.conf
systemctl restart nginx

step "Ganeti: RPC connect timeout 5 s -> 60 s (a slow guest misses 5 s: 'Error 28: SSL connection timeout')"
constants=/usr/share/ganeti/3.0/ganeti/_constants.py
sed -i 's/^RPC_CONNECT_TIMEOUT = 5$/RPC_CONNECT_TIMEOUT = 60/' "$constants"
grep -q '^RPC_CONNECT_TIMEOUT = 60$' "$constants"

# kvm_path: QEMU by its own name runs TCG. /usr/bin/kvm would run the clone under KVM nested in this TCG guest,
# and the guest's kernel died of it ('Kernel panic - not syncing: corrupted stack end detected inside scheduler',
# in the clone's QEMU, in kvm_vcpu_ioctl), twice, once with the machine otherwise quiet.
step "Ganeti: gnt-cluster init"
modprobe drbd 2>/dev/null || true
# Its one job is the post-init hooks (LUClusterPostInit: none here): when only that job failed to start, the
# cluster is initialised and is not initialised again.
if ! init_output=$(gnt-cluster init \
	--vg-name=all \
	--master-netdev=br0 \
	--enabled-hypervisors=kvm \
	-H kvm:kvm_flag=disabled,kvm_path=/usr/bin/qemu-system-x86_64,kernel_path=,initrd_path=,vnc_bind_address= \
	--nic-parameters=mode=bridged,link=br0 \
	--enabled-disk-templates=plain \
	--no-etc-hosts \
	cluster.farm 2>&1); then
	printf '%s\n' "$init_output" >&2
	if ! grep -q 'failed to start' <<<"$init_output" || ! test -s /var/lib/ganeti/config.data; then exit 1; fi
	step "gnt-cluster init: its post-init job did not start; the cluster is initialised"
fi
printf '%s\n' "$init_output"
gnt-cluster --version

step "Ganeti: the source instance adopts its disk (never started)"
ganeti gnt-instance add -n host01.farm -o debootstrap+default -t plain --disk "0:adopt=$source_lv" \
	--no-install --no-start -B maxmem=1024M,minmem=512M --net 0:mac=52:54:a1:3c:5e:01 \
	gallifrey.xivo.vm.farm
ganeti gnt-instance list -o name,status,disk.sizes
lvs all
step "done"
