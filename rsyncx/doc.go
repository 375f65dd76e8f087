// Package rsyncx moves a workflow's keys between the scheduler and its remote install
// targets the way Cylc 8 does, with ssh and rsync: remote-init (the remote makes its client
// key pair and prints the public certificate between KEYSTART and KEYEND), file install (rsync
// sends .service/server.key and a few directories, nothing else of .service) with its install
// log, and remote tidy. It also holds the remote side's reader of the tar stream that carries
// the contact file.
//
// # Commands
//
// Every command is an argv slice run without a shell ([Run]). The command lines are built by
// [Remote.InitArgv], [Remote.TidyArgv] and [Remote.InstallArgv] and match Cylc's, word for
// word. What ssh sends to the remote host is read by the remote user's shell, so each remote
// word is quoted ([Quote]); the remote run directory goes as '$HOME/curvezmq-run/<id>', single
// quoted, and the remote program expands $HOME itself. A user's ssh command string replaces
// the default whole, because ssh keeps the first value it sees of an option. Targets,
// workflow ids, hosts and extra install items are checked before anything runs
// ([ValidTarget], [ValidWorkflowID], [ValidHost], [ValidInclude]).
//
// # Running
//
// [Run] starts each command in a process group of its own. When the context is done the
// whole group is killed, so rsync's ssh child cannot keep the pipes (and the caller) waiting;
// on Linux what a command leaves in its group when it exits is killed too. Output is kept up
// to a bound. Errors say what happened in a form a caller can branch on: an [*ExitError]
// (exit status 255 matches [ErrUnreachable]), [ErrTimeout], exec.ErrNotFound. A remote
// process may outlive the local ssh that was killed (there is no pseudo-terminal, so no
// hang-up reaches it).
//
// # Statuses
//
// [Remote.Init] and [Remote.Install] return Cylc's status strings ([Status]). The 255
// statuses mean the host could not be reached and another host may do better; after a failed
// rsync, an "ssh HOST true" probe decides, as in Cylc, because rsync's own exit status after a
// connection failure is racy. The local install target ([LocalTarget]) skips every remote
// step.
//
// # Remote side
//
// remote-init reads an uncompressed tar stream on stdin. [ReadContactTar] accepts only one
// regular file named .service/contact, bounded in size; [InstallContact] writes it with mode
// 0600 by an atomic rename. [WriteContactTar] makes the stream on the scheduler's side.
//
// # Without ssh and rsync
//
// [CopyInstall] is the file install done in-process: it applies the options and filter rules
// of the rsync command line, read from the same list ([Remote.InstallArgv] builds the
// command from it), and refuses any word it does not implement; a test runs it and real
// rsync on the same trees and compares the results. [Loopback] is an install target whose
// remote home is a directory of this machine: remote-init and remote-tidy run as child
// processes with HOME set to it, the file install is CopyInstall. The demo uses it.
//
// # Putting the program on a remote host
//
// [Remote.InstallBinary] asks the remote for "uname -sm", copies the matching cross build
// (curvezmq-<goos>-<goarch>, [BuildName]) with rsync to [BinaryPath] (~/.curvezmq/bin/curvezmq,
// mode 0755) and checks its "version" line there.
//
// # The scheduler's side
//
// cmd/curvezmq holds the orchestration per install target (remote-init with the
// WriteContactTar stream, keystore.InstallClientKey, an authenticator reload, Install; the
// start, restart and reload load types; tidy at shutdown and on removal) and the remote side
// (remote-init and remote-tidy). Not done: a retry on another host after a 255 status (a
// target has one host), a remote "timeout" wrapper for remote-tidy as Cylc has (a remote
// process outlives a local timeout), forwarded environment variables, remote-init's
// symlink-directory arguments.
package rsyncx
