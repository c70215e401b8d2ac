#!/bin/bash
# Debian's sshd with a terminal session: a client in another network
# namespace logs in with `ssh -tt` (a pty on the server) and starts a loop
# printing a counter every 100 ms in the session's shell.  The whole sshd
# tree (the listener, the session's sshd, the shell and its loop) is dumped
# with --tcp-established, killed and restored while a foreground command
# runs and a line typed meanwhile waits in the pty's input queue; the SAME
# ssh client goes on receiving the counter where it was (no number lost or
# repeated, no reset), the queued line runs once the command ends, and a
# line typed into the client afterwards is run by the shell.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-net.sh"
require_root
[ -x /usr/sbin/sshd ] || skip_all "needs openssh-server"
command -v ssh > /dev/null && command -v ssh-keygen > /dev/null || skip_all "needs openssh-client"
net_setup

# sshd's privilege separation directory (Debian's unit makes it at start)
[ -d /run/sshd ] || mkdir -m 0755 /run/sshd || skip_all "cannot make /run/sshd"
ssh-keygen -q -t ed25519 -N '' -f "$T/hostkey" || bail "ssh-keygen (host key)"
ssh-keygen -q -t ed25519 -N '' -f "$T/id" || bail "ssh-keygen (client key)"
cp "$T/id.pub" "$T/authorized_keys"
port=2222
cat > "$T/sshd_config" <<EOF
Port $port
ListenAddress 10.77.0.1
HostKey $T/hostkey
PidFile $T/sshd.pid
AuthorizedKeysFile $T/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
EOF
sshd=$(start_bg "$T/sshd.out" nsenter --net=/run/netns/"$NSA" /usr/sbin/sshd -D -e -f "$T/sshd_config")
wait_for "nsenter --net=/run/netns/$NSA ss -Htln | grep -q ':$port '" 10 || {
	note "$(cat "$T/sshd.out")"
	bail "sshd did not start"
}

# the client: stdin from a fifo we keep open, so that lines can be typed later
mkfifo "$T/in"
exec 8<> "$T/in"
setsid nsenter --net=/run/netns/"$NSB" ssh -tt -F /dev/null -i "$T/id" \
	-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
	-p $port root@10.77.0.1 < "$T/in" >> "$T/cli.out" 2>&1 &
cli=$!
track "$cli"
type_line() { printf '%s\n' "$1" >&8; }

# numbers: the counter values the client received, in order
# (a line may start with echoed input: the number ends it)
numbers() { tr -d '\r' < "$T/cli.out" | grep -oE 'N [0-9]+$' | awk '{ print $2 }'; }
last_number() { numbers | tail -n 1; }
contiguous() {
	numbers | awk '$1 != n { printf "# got %s where %d was due\n", $1, n; exit 1 } { n++ }
		END { if (n < 2) exit 1 }'
}

type_line 'PS1="$ "; PROMPT_COMMAND=; i=0; (while :; do echo "N $i"; i=$((i + 1)); sleep 0.1; done) &'
wait_for '[ "$(last_number)" -ge 10 ]' 30 || { note "$(tail -n 5 "$T/cli.out")"; bail "no counter from the session"; }
note "sshd $sshd, tree: $(descendants "$sshd" | tr '\n' ' ')"
check "the session's shell has a pty" eval 'descendants $sshd | xargs -r ps -o tty= -p | grep -q pts/'
# A command in the foreground (its own process group, the terminal's
# foreground one) and a line typed meanwhile: the shell has not read it, it
# waits in the pty's input queue when the tree is dumped.
type_line "sleep 8; echo AFTER-\$((1 + 1))-$$"
wait_for "descendants $sshd | xargs -r ps -o args= -p | grep -qx 'sleep 8'" 10
sleep 0.3
type_line "echo QUEUED-\$((3 * 3))-$$"
wait_for "tr -d '\r' < '$T/cli.out' | grep -q 'echo QUEUED-'" 10	# echoed: in the queue
check "kup dump --tcp-established of the sshd tree (in its namespace)" \
	kup_in "$NSA" "$T/dump.log" dump -t "$sshd" -D "$T/img" --tcp-established ||
	{ note "$(tail -n 20 "$T/dump.log")"; exit 1; }
check "the sshd tree is gone" wait_gone "$sshd"
before=$(last_number)
sleep 0.5
check "kup restore (in sshd's namespace)" \
	kup_in "$NSA" "$T/restore.log" restore -D "$T/img" -d --tcp-established ||
	{ note "$(tail -n 20 "$T/restore.log")"; exit 1; }
track "$sshd"
check "the same client goes on receiving the counter (past $before)" \
	wait_for "[ \$(last_number) -ge $((before + 10)) ]" 20
check "every number once, in order, across the restore" contiguous
# the sleep starts over after the restore (restart_syscall): 8 s to look
slp=$(descendants "$sshd" | xargs -r ps -o pid=,args= -p | awk '$2 == "sleep" && $3 == "8" { print $1 }')
check "the foreground command ($slp) is still the terminal's foreground group" \
	eval '[ -n "$slp" ] && [ "$(ps -o tpgid= -p $slp | tr -d " ")" = "$slp" ] &&
		[ "$(ps -o pgid= -p $slp | tr -d " ")" = "$slp" ]'
check "the foreground command finishes after the restore" \
	wait_for "tr -d '\r' < '$T/cli.out' | grep -q 'AFTER-2-$$'" 20
check "then the line typed during the dump runs (it was in the pty's input queue)" \
	wait_for "tr -d '\r' < '$T/cli.out' | grep -q 'QUEUED-9-$$'" 20
type_line "echo MARK-\$((6 * 7))-$$"
check "a line typed into the client afterwards runs in the session" \
	wait_for "tr -d '\r' < '$T/cli.out' | grep -q 'MARK-42-$$'" 20
check "the client is still connected (the same process)" alive "$cli"
check "no network lock is left" [ "$(kup_tables "$NSA")" = 0 ]
type_line 'kill %1; exit'
check "the session ends cleanly: the client exits" wait_gone "$cli" 20
