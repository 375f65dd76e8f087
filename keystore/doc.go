// Package keystore keeps CURVE keys the way Cylc 8 keeps them: pyzmq's certificate files,
// the .service directory of a workflow run and its lifecycle on the scheduler's host, on
// install targets and in clients, liveness and exclusion of schedulers, and the contact
// file. A key directory written by Cylc (through pyzmq) works with this package and the
// reverse, byte for byte where Cylc cares.
//
// It imports only the key package of this module.
//
// # Layout
//
// On the scheduler's host, <run dir>/.service ([ServiceDir]) holds:
//
//	server.key                              the server's public certificate
//	server.key_secret                       the server's public and secret key
//	client.key_secret                       a copy of server.key_secret: local clients use the server's key pair
//	client_public_keys/                     the authenticator's allow-list
//	client_public_keys/client_localhost.key a copy of server.key
//	client_public_keys/client_<target>.key  each remote install target's public certificate, as it sent it
//	contact                                 KEY=VALUE fields, present while the scheduler runs
//
// On a remote install target, $HOME/cylc-run/<id>/.service holds client.key_secret, the
// target's client_<target>.key, server.key (sent by file install) and contact (sent by
// remote-init). Every key file is written with mode 0600; a .service or
// client_public_keys directory this package creates is 0700.
//
// # Lifecycle
//
// A scheduler starts with [ClaimService] ([LockService], then [DetectOldContact]), then
// [KeyHousekeeping] and [CreateServerKeys], and writes the contact file ([WriteContact]) once
// its ports are known. For each remote install target, remote-init on that host runs
// [CreateClientKeys]; the scheduler saves the printed certificate with [InstallClientKey]
// and reloads its authenticator. At shutdown the scheduler calls [RemoteTidy] on each target
// (remotely), [RemoveServerKeys], and removes the contact file last. Clients use
// [ReadContact] and [LoadClientKeys].
//
// # Reading certificates
//
// [ParseCertificate] reads what pyzmq's load_certificate and czmq's zcert_load read:
// comments (# lines), blank lines, LF or CRLF line ends, any indentation (spaces or tabs),
// values in double or single quotes (with czmq's trailing # comment) or unquoted (pyzmq's
// rule: spaces, tabs and quotes stripped from both ends), a missing metadata section,
// sections in any order, a UTF-8 byte-order mark. The public-key and secret-key entries
// are taken from the curve section, or from before any section line (pyzmq ignores
// sections); a key entry inside metadata is metadata, as czmq reads it. It refuses, with a
// [*FileError] naming the file and line: an empty file, no public-key, a key that is not
// exactly 40 Z85 characters (czmq's rule; pyzmq does not check and libzmq would later
// refuse it), two public-keys or two secret-keys, text after a closing quote, a key
// without "=", and a secret-key that does not belong to the public-key. A CR-only file is
// one line to both loaders and is refused. An empty secret-key value means no secret (as
// for both loaders). Errors never quote a line: it may hold a secret.
//
// # Writing files
//
// Certificates are pyzmq's exact text ([PublicCertificate], [SecretCertificate]). Every
// file is written by [WriteFileAtomic]: a temporary file in the same directory, created
// 0600 and set to its final mode with fchmod (the process umask is never changed), fsynced,
// renamed into place, and the directory fsynced, so a crash leaves the old file or the new
// one. A crash can leave the temporary file itself, named ".NAME.tmpDIGITS": a dotfile, so
// pyzmq's "*.key" glob, czmq's store and [ReadPublicKeys] never read it (other readers of
// client_public_keys must skip dotfiles too), and [KeyHousekeeping], [CreateClientKeys] and
// [RemoteTidy] remove any left in .service.
//
// # Departures from Cylc
//
//   - The allow-list copy of the server key is always client_public_keys/client_localhost.key.
//     Cylc names it client_<host>.key after the scheduler's --host option when one was given
//     (nearly always "localhost"); the name does not matter to the authenticator, and a fixed
//     one keeps shutdown and tests simple.
//   - Remote-init's guard B is an exact match. Cylc refuses an entry of .service matching
//     ^client_\S*key$ whose name does not contain the target as a substring, so target "hpc"
//     accepts a leftover client_hpc2.key (a shared filesystem with target "hpc2", the very
//     misconfiguration the guard is for) while "hpc2" refuses client_hpc.key. We refuse every
//     such entry except client_<target>.key itself; the messages are Cylc's.
//   - Install target names must match [A-Za-z0-9._-]+ and not start with "-" ([ValidTarget]);
//     Cylc does not check.
//   - client_public_keys/ is created 0700 (Cylc: the umask's default, typically 0755), and the
//     contact file 0600 (Cylc: typically 0644).
//   - Only one scheduler may hold a .service: [LockService] takes an flock on the directory,
//     in addition to Cylc's contact-file liveness check, which this package makes only for a
//     scheduler on this host (Cylc also asks other hosts over ssh). A contact host counts as
//     this one when it is this host name, a local address, or a name with this host's
//     first label that resolves to a local address; otherwise the answer is
//     [ErrCannotTell], never a guess.
//   - remote-tidy ([RemoteTidy]) removes nothing from a .service that is a symlink or a
//     scheduler's own (it holds client_public_keys); Cylc's tidy does not check.
//   - A public key received from remote-init ([InstallClientKey]) is refused when pyzmq,
//     which ignores sections, would read it differently: a secret-key or a second
//     public-key line anywhere.
//
// # Secrets
//
// Secret keys appear only in the key package's redacting types and in the bytes written to
// key files. No error, warning or log line carries key material: parser errors name the
// file, line and reason, never the text.
package keystore
