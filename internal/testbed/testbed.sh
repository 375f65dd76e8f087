#!/usr/bin/env bash
# testbed.sh: throwaway "remote hosts" for tests. Each instance N is a real OpenSSH sshd in
# its own network namespace (rbtN, address 10.213.N.2, reached from 10.213.N.1 over a veth
# pair), with its own PID and mount namespaces, serving a dedicated unprivileged user whose
# home is a per-instance directory.
#
# Usage (as root):
#   testbed.sh up        allocate a free instance, start its sshd, print the path of its env file
#   testbed.sh start N   (re)start the sshd of instance N, as after a crash; rewrites the env file
#   testbed.sh down N    stop every process of instance N and remove the instance
#   testbed.sh cleanup   down every instance, then remove the user, the guard route, the base
#                        directory and stray client configs (only when no tests are running)
#
# Environment knobs:
#   RB_BASE         where instance directories live (default /tmp/remotebed)
#   RB_FIRST        first instance number to try in up (default 1)
#   RB_SSHD_EXTRA   extra lines appended to sshd_config (tests use it to make up fail)
#
# What an instance offers (see the env file for the paths):
#   - ssh aliases rbtN (port 22) and rbtN-norsync (port 2222, PATH without rsync), also
#     plain "ssh 10.213.N.2", through /etc/ssh/ssh_config.d/rbtN.conf;
#   - the remote home /home/rbremote, which is RB_REMOTE_HOME_LOCAL seen from the outside;
#   - ~/full (64 KiB tmpfs), ~/ro (read-only tmpfs), ~/locked (mode 0555), a private /tmp;
#   - sshd as PID 1 of its PID namespace: killing it kills every remote process.
set -euo pipefail
shopt -s nullglob

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
umask 022

readonly BASE=${RB_BASE:-/tmp/remotebed}
readonly RUSER=rbremote
readonly RHOME=/home/$RUSER
readonly NET=10.213
readonly MAXN=250
readonly SSHD=/usr/sbin/sshd
readonly CONFD=/etc/ssh/ssh_config.d
SELF=$(readlink -f -- "${BASH_SOURCE[0]}")
readonly SELF

log() { printf 'testbed: %s\n' "$*" >&2; }
die() {
	log "$*"
	exit 1
}

# pause sleeps a little between polls; every caller bounds its loop.
pause() { sleep 0.05; }

check_n() {
	[[ ${1-} =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= MAXN)) || die "bad instance number: ${1-}"
}

# vars sets the names and paths of instance $1.
vars() {
	N=$1
	NS=rbt$N
	HOST_IF=rbh$N
	NS_IF=rbn$N
	ADDR=$NET.$N.2
	LOCAL_ADDR=$NET.$N.1
	DIR=$BASE/$NS
	HOMEDIR=$DIR/home
}

ensure_base() {
	mkdir -p -m 0711 -- "$BASE"
	if [ -L "$BASE" ] || [ ! -d "$BASE" ] || [ "$(stat -c %u -- "$BASE")" != 0 ]; then
		die "$BASE is not a directory owned by root"
	fi
	chmod 0711 -- "$BASE"
}

# with_lock runs its arguments in a subshell holding the base directory's lock, so the lock's
# descriptor never leaks into a long-lived child such as sshd.
with_lock() {
	(
		flock -w 60 9 || die "cannot take the lock on $BASE/.lock"
		"$@"
	) 9>"$BASE/.lock"
}

# common makes what all instances share: the remote user, its home mount point, sshd's
# privilege separation directory and the guard route that keeps test traffic on this machine.
common() {
	if ip -4 -o addr show | awk '{print $2, $4}' | grep -v '^rbh[0-9]*[@ ]' | grep -q " $NET\."; then
		die "$NET.0.0/16 is in use on this machine; the test bed needs it"
	fi
	if ! id -u "$RUSER" >/dev/null 2>&1; then
		# The password field must be "*": with "!" and UsePAM no, sshd treats the account as
		# locked and refuses even public-key logins.
		useradd -M -d "$RHOME" -s /bin/bash -p '*' -U "$RUSER"
	fi
	mkdir -p -m 0755 -- "$RHOME" /run/sshd
	ip route replace unreachable "$NET.0.0/16"
}

# alloc creates the first free namespace rbtN (the namespace is the instance's lock) and
# prints N.
alloc() {
	local n=${RB_FIRST:-1}
	check_n "$n"
	for (( ; n <= MAXN; n++)); do
		[ -e "/run/netns/rbt$n" ] && continue
		ip netns add "rbt$n" || die "ip netns add rbt$n failed"
		echo "$n"
		return 0
	done
	die "no free instance number"
}

setup() {
	local kt kb
	rm -rf -- "$DIR"
	mkdir -m 0711 -- "$DIR"

	ip link del "$HOST_IF" 2>/dev/null || true
	ip link add "$HOST_IF" type veth peer name "$NS_IF" netns "$NS"
	ip addr add "$LOCAL_ADDR/24" dev "$HOST_IF"
	ip link set "$HOST_IF" up
	ip -n "$NS" link set lo up
	ip -n "$NS" addr add "$ADDR/24" dev "$NS_IF"
	ip -n "$NS" link set "$NS_IF" up

	ssh-keygen -q -t ed25519 -N '' -C "$NS-host" -f "$DIR/host_key"
	ssh-keygen -q -t ed25519 -N '' -C "$NS-client" -f "$DIR/client_key"
	ssh-keygen -q -t ed25519 -N '' -C "$NS-wrong" -f "$DIR/wrong_host_key"
	read -r kt kb _ <"$DIR/host_key.pub"
	printf '%s %s %s\n[%s]:2222 %s %s\n' "$ADDR" "$kt" "$kb" "$ADDR" "$kt" "$kb" >"$DIR/known_hosts"
	read -r kt kb _ <"$DIR/wrong_host_key.pub"
	printf '%s %s %s\n[%s]:2222 %s %s\n' "$ADDR" "$kt" "$kb" "$ADDR" "$kt" "$kb" >"$DIR/wrong_known_hosts"

	# The remote home. StrictModes wants it and .ssh at 0700, owned by the user.
	mkdir -m 0700 -- "$HOMEDIR" "$HOMEDIR/.ssh"
	install -m 0600 -- "$DIR/client_key.pub" "$HOMEDIR/.ssh/authorized_keys"
	mkdir -m 0755 -- "$HOMEDIR/full" "$HOMEDIR/ro" "$HOMEDIR/locked"
	chown -R "$RUSER:$RUSER" -- "$HOMEDIR"
	chmod 0555 -- "$HOMEDIR/locked"

	# The PATH of port 2222: everything of /usr/bin except rsync.
	mkdir -m 0755 -- "$DIR/norsync-bin"
	ln -s /usr/bin/* "$DIR/norsync-bin/"
	rm -f -- "$DIR/norsync-bin/rsync"

	cat >"$DIR/sshd_config" <<EOF
ListenAddress $ADDR:22
ListenAddress $ADDR:2222
HostKey $DIR/host_key
PidFile $DIR/sshd.pid
LogLevel INFO
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
PermitRootLogin no
AllowUsers $RUSER
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
MaxStartups 100:30:200
MaxSessions 100
${RB_SSHD_EXTRA:-}
Match LocalPort 2222
	SetEnv PATH=$DIR/norsync-bin
EOF

	cat >"$DIR/ssh_config" <<EOF
Host $NS $ADDR $NS-norsync
	HostName $ADDR
	User $RUSER
	IdentityFile $DIR/client_key
	IdentitiesOnly yes
	UserKnownHostsFile $DIR/known_hosts
	GlobalKnownHostsFile /dev/null
	StrictHostKeyChecking yes
	UpdateHostKeys no
	BatchMode yes
	ControlMaster no
	GSSAPIAuthentication no
	LogLevel ERROR
Host $NS-norsync
	Port 2222
EOF
	mkdir -p -m 0755 -- "$CONFD"
	install -m 0644 -- "$DIR/ssh_config" "$CONFD/$NS.conf"
}

# cmd__sshd runs inside the instance's network, PID and mount namespaces (as PID 1) and
# becomes sshd once the private mounts are in place.
cmd__sshd() {
	check_n "${1-}"
	vars "$1"
	local uid gid
	uid=$(id -u "$RUSER")
	gid=$(id -g "$RUSER")
	mount --make-rprivate /
	mount --bind -- "$HOMEDIR" "$RHOME"
	# A private /tmp. The instance directory may be under /tmp: keep it open on fd 3 and bind
	# it back in place. Without --no-canonicalize, mount(8) resolves /proc/self/fd/3 after
	# /tmp is covered and silently binds an empty directory.
	exec 3<"$DIR"
	mount -t tmpfs -o mode=1777,size=256m tmpfs /tmp
	mkdir -p -- "$DIR"
	mount --no-canonicalize --bind /proc/self/fd/3 "$DIR"
	exec 3<&-
	mount -t tmpfs -o "size=64k,mode=0755,uid=$uid,gid=$gid" tmpfs "$RHOME/full"
	mount -t tmpfs -o "ro,size=64k,mode=0755,uid=$uid,gid=$gid" tmpfs "$RHOME/ro"
	exec "$SSHD" -D -e -f "$DIR/sshd_config"
}

# procs prints the PIDs of the processes in namespace $1.
procs() { ip netns pids "$1" 2>/dev/null || true; }

# stop_procs ends every process of the instance (sshd, sessions, stray remote commands, the
# unshare parent): TERM and CONT, then KILL after a second. Each kill tolerates a process
# that already exited.
stop_procs() {
	local pids i
	[ -e "/run/netns/$NS" ] || return 0
	pids=$(procs "$NS")
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null || true
	# shellcheck disable=SC2086
	kill -CONT $pids 2>/dev/null || true
	for ((i = 0; i < 20; i++)); do
		pids=$(procs "$NS")
		[ -n "$pids" ] || return 0
		pause
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		pids=$(procs "$NS")
		[ -n "$pids" ] || return 0
		pause
	done
	log "$NS: processes still running: $(echo $pids)"
	return 1
}

# child_of prints the PID of a child of process $1, if it has one.
child_of() {
	local parent=$1 f line rest c=""
	if [ -r "/proc/$parent/task/$parent/children" ]; then
		read -r c _ <"/proc/$parent/task/$parent/children" || true
		printf '%s' "$c"
		return 0
	fi
	# Without CONFIG_PROC_CHILDREN: find a process whose parent is $parent.
	for f in /proc/[0-9]*/stat; do
		read -r line <"$f" 2>/dev/null || continue
		rest=${line##*) }
		# shellcheck disable=SC2086
		set -- $rest
		if [ "${2-}" = "$parent" ]; then
			c=${f#/proc/}
			printf '%s' "${c%/stat}"
			return 0
		fi
	done
}

start_sshd() {
	local upid spid="" i
	: >"$DIR/sshd.log"
	"$SSHD" -t -f "$DIR/sshd_config" 2>>"$DIR/sshd.log" || die "$NS: sshd rejects its configuration"
	# setsid: the host must not belong to the caller's process group or session.
	setsid ip netns exec "$NS" unshare --pid --fork --kill-child --mount-proc --propagation private \
		bash "$SELF" _sshd "$N" </dev/null >>"$DIR/sshd.log" 2>&1 &
	upid=$!
	for ((i = 0; i < 200; i++)); do
		kill -0 "$upid" 2>/dev/null || die "$NS: sshd died"
		# sshd's own pid file says 1 inside its PID namespace; its host PID is the child of
		# unshare.
		[ -n "$spid" ] || spid=$(child_of "$upid")
		if [ -n "$spid" ] && grep -qF "Server listening on $ADDR port 22." "$DIR/sshd.log" &&
			grep -qF "Server listening on $ADDR port 2222." "$DIR/sshd.log"; then
			SSHD_PID=$spid
			UNSHARE_PID=$upid
			return 0
		fi
		pause
	done
	die "$NS: sshd did not start listening"
}

write_env() {
	cat >"$DIR/env.tmp" <<EOF
RB_N=$N
RB_NETNS=$NS
RB_HOST=$NS
RB_HOST_NORSYNC=$NS-norsync
RB_ADDR=$ADDR
RB_LOCAL_ADDR=$LOCAL_ADDR
RB_HOST_IF=$HOST_IF
RB_USER=$RUSER
RB_UID=$(id -u "$RUSER")
RB_GID=$(id -g "$RUSER")
RB_DIR=$DIR
RB_SSH_CONFIG=$DIR/ssh_config
RB_KEY=$DIR/client_key
RB_KNOWN_HOSTS=$DIR/known_hosts
RB_WRONG_KNOWN_HOSTS=$DIR/wrong_known_hosts
RB_SSHD_PID=$SSHD_PID
RB_UNSHARE_PID=$UNSHARE_PID
RB_SSHD_LOG=$DIR/sshd.log
RB_REMOTE_HOME=$RHOME
RB_REMOTE_HOME_LOCAL=$HOMEDIR
EOF
	mv -f -- "$DIR/env.tmp" "$DIR/env"
}

# teardown removes instance N; it is idempotent and reports what it could not remove.
teardown() {
	local rc=0
	vars "$1"
	stop_procs || rc=1
	ip link del "$HOST_IF" 2>/dev/null || true
	rm -f -- "$CONFD/$NS.conf"
	rm -rf -- "$DIR" || rc=1
	# Last: the namespace is the instance's lock (alloc), and a new instance with this number
	# must not have its directory removed by the end of this teardown.
	if [ -e "/run/netns/$NS" ]; then
		ip netns del "$NS" || rc=1
	fi
	return $rc
}

up_failed() {
	local rc=$?
	((rc)) || rc=1
	trap - EXIT
	log "up of $NS failed; removing it"
	if [ -f "$DIR/sshd.log" ]; then
		tail -n 20 -- "$DIR/sshd.log" | sed 's/^/testbed: sshd: /' >&2 || true
	fi
	teardown "$N" || true
	exit "$rc"
}

cmd_up() {
	local n
	ensure_base
	with_lock common
	n=$(with_lock alloc)
	vars "$n"
	trap up_failed EXIT
	setup
	start_sshd
	write_env
	trap - EXIT
	printf '%s\n' "$DIR/env"
}

cmd_start() {
	check_n "${1-}"
	vars "$1"
	[ -e "/run/netns/$NS" ] && [ -d "$DIR" ] || die "no instance $NS"
	stop_procs || die "$NS: cannot stop the old sshd"
	start_sshd
	write_env
	printf '%s\n' "$DIR/env"
}

cmd_down() {
	check_n "${1-}"
	teardown "$1"
}

cmd_cleanup() {
	local rc=0 ns l f
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		if [[ $ns =~ ^rbt([0-9]+)$ ]]; then
			teardown "${BASH_REMATCH[1]}" || rc=1
		fi
	done
	for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
		if [[ $l =~ ^rbh[0-9]+$ ]]; then
			ip link del "$l" 2>/dev/null || true
		fi
	done
	for f in "$CONFD"/rbt*.conf; do
		rm -f -- "$f"
	done
	if [ -d "$BASE" ] && [ ! -L "$BASE" ]; then
		rm -rf -- "$BASE" || rc=1
	fi
	ip route del unreachable "$NET.0.0/16" 2>/dev/null || true
	if id -u "$RUSER" >/dev/null 2>&1; then
		userdel "$RUSER" || rc=1
	fi
	if getent group "$RUSER" >/dev/null; then
		groupdel "$RUSER" || rc=1
	fi
	if [ -d "$RHOME" ]; then
		rmdir -- "$RHOME" || rc=1
	fi
	return $rc
}

[ "$(id -u)" = 0 ] || die "must run as root"
case ${1-} in
up) cmd_up ;;
start) cmd_start "${2-}" ;;
down) cmd_down "${2-}" ;;
cleanup) cmd_cleanup ;;
_sshd) cmd__sshd "${2-}" ;;
*) die "usage: testbed.sh up | start N | down N | cleanup" ;;
esac
