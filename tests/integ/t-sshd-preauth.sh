#!/bin/bash
# Debian's sshd with a client half-way through its login: the client (ssh
# with a passphrase-protected key, driven by expect) has done the key
# exchange and had its public key accepted, and waits at the passphrase
# prompt; sshd's privilege-separated pre-auth child ("sshd: root [net]") is
# chrooted to /run/sshd.  sshd's tree is dumped with --tcp-established,
# killed and restored: the pre-auth child is back inside its chroot, and
# once the passphrase is typed the login completes and the command runs.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
[ -x /usr/sbin/sshd ] || skip_all "no /usr/sbin/sshd (openssh-server)"
command -v expect > /dev/null || skip_all "no expect"
command -v ssh-keygen > /dev/null || skip_all "no ssh-keygen"
net_setup

# the pre-auth child's chroot; sshd refuses to start without it
[ -d /run/sshd ] || mkdir -m 0755 /run/sshd

ssh-keygen -q -t ed25519 -N '' -f "$T/host_key" || bail "ssh-keygen (host key)"
ssh-keygen -q -t ed25519 -N 'kup passphrase' -f "$T/id" || bail "ssh-keygen (client key)"
cp "$T/id.pub" "$T/authorized_keys"
cat > "$T/sshd_config" <<CONF
ListenAddress 10.77.0.1:2222
HostKey $T/host_key
PidFile $T/sshd.pid
AuthorizedKeysFile $T/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LoginGraceTime 600
MaxStartups 10
CONF
/usr/sbin/sshd -t -f "$T/sshd_config" || bail "sshd -t: the configuration is refused"

# -D: no daemon, -e: log to stderr (no syslog socket outside the tree)
sshd=$(start_bg "$T/sshd.log" nsenter --net=/run/netns/"$NSA" /usr/sbin/sshd -D -e -f "$T/sshd_config")
wait_for "in_ns $NSA ss -Htln 'sport = :2222' | grep -q 2222" 10 || bail "sshd did not listen: $(cat "$T/sshd.log")"

cat > "$T/client.exp" <<EXP
set timeout 600
log_user 1
spawn ssh -p 2222 -i $T/id -o IdentitiesOnly=yes -o IdentityAgent=none \
	-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no \
	-o PreferredAuthentications=publickey -o ServerAliveInterval=0 \
	root@10.77.0.1 echo LOGGED-IN-\\\$((6 * 7))
expect {
	"Enter passphrase" {}
	timeout { puts "\nNO-PROMPT"; exit 2 }
	eof { puts "\nEOF-BEFORE-PROMPT"; exit 3 }
}
puts "\nAT-PROMPT"
while {![file exists $T/go]} { after 100 }
send "kup passphrase\r"
expect {
	"LOGGED-IN-42" { puts "\nCOMMAND-RAN" }
	timeout { puts "\nNO-OUTPUT"; exit 4 }
	eof { puts "\nEOF-BEFORE-OUTPUT"; exit 5 }
}
expect eof
catch wait result
puts "\nEXIT [lindex \$result 3]"
EXP
cli=$(start_bg "$T/client.log" nsenter --net=/run/netns/"$NSB" expect -f "$T/client.exp")
wait_for_line "$T/client.log" '^AT-PROMPT' 30 || bail "the client did not reach its passphrase prompt: $(tail -n 5 "$T/client.log")"

net=$(for p in $(descendants "$sshd"); do
	grep -q '^sshd: root \[net\]' /proc/$p/cmdline 2> /dev/null && echo "$p"
done | head -n 1)
[ -n "$net" ] || bail "no pre-auth child of sshd $sshd: $(ps -o pid,ppid,args --ppid "$sshd")"
priv=$(awk '{ print $4 }' /proc/$net/stat)
check "the pre-auth child $net is chrooted to /run/sshd" eval '[ "$(readlink /proc/$net/root)" = /run/sshd ]'
check "and runs as sshd" eval '[ "$(stat -c %U /proc/$net)" = sshd ]'
tree=$(tree_pids "$sshd")

check "kup dump --tcp-established of sshd's tree (${tree% })" \
	kup_in "$NSA" "$T/dump.log" dump -t "$sshd" -D "$T/img" --tcp-established ||
	note "$(tail -n 20 "$T/dump.log")"
check "the tree is gone" eval '(for p in $tree; do wait_gone $p || exit 1; done)'
check "kup restore --tcp-established" \
	kup_in "$NSA" "$T/restore.log" restore -D "$T/img" -d --tcp-established ||
	note "$(tail -n 20 "$T/restore.log")"
for p in $tree; do track "$p"; done
check "the pre-auth child $net is back" alive "$net"
check "inside its chroot /run/sshd" eval '[ "$(readlink /proc/$net/root)" = /run/sshd ]'
check "as sshd, under its monitor $priv" \
	eval '[ "$(stat -c %U /proc/$net)" = sshd ] && [ "$(awk "{ print \$4 }" /proc/$net/stat)" = "$priv" ]'

touch "$T/go"
check "the login completes and the command runs" wait_for_line "$T/client.log" '^COMMAND-RAN' 60 ||
	note "$(tail -n 10 "$T/client.log"; tail -n 10 "$T/sshd.log")"
check "ssh exits 0" wait_for_line "$T/client.log" '^EXIT 0' 30
check "sshd logged the accepted key" grep -q "Accepted publickey for root" "$T/sshd.log"
check "the listener still accepts a new connection" \
	eval 'in_ns "$NSB" bash -c "exec 3<>/dev/tcp/10.77.0.1/2222 && head -c 7 <&3" | grep -q "^SSH-2.0"'
