// Package zap is an in-process ZAP authenticator (ZMQ RFC 27) for CURVE servers: what
// Cylc gets from pyzmq's ThreadAuthenticator with configure_curve(domain='*',
// location=client_public_keys), except that the allow-list follows its directory by
// itself, at once and safely.
//
// An [Authenticator] implements [handshake.Authorizer] (the decision, once INITIATE is
// verified) and [handshake.Tracker] (revocation of live connections), and its
// [Authenticator.Observe] takes the engine's handshake events for the counters of
// [Authenticator.Stats]. A server wires all three:
//
//	auth := zap.New(zap.Config{Logger: logger})
//	defer auth.Close()
//	if err := auth.ConfigureCurve("*", filepath.Join(srvDir, "client_public_keys")); err != nil {
//		return err
//	}
//	cfg := &curve.Config{KeyPair: serverKeys, Authorizer: auth, Events: auth.Observe}
//	ln, err := curve.Listen("tcp", addr, cfg)
//	// or, for a zmq4 socket: cfg.Server = true; zmq4.NewRouter(curve.WithConfig(ctx, cfg))
//	// and Listen("curve://" + addr)
//
// A refused client gets ERROR "400" (or "500"), which a libzmq client reports as
// HANDSHAKE_FAILED_AUTH and takes as final; the server never hands its connection to the
// application or to zmq4. An allowed client's connection is closed by the server if its
// key is revoked later.
//
// # Decisions
//
// A request carries the domain, the peer address, the mechanism and the client's public
// key; the result carries the status (200, 300, 400 or 500), a status text for logs,
// the user id (the key's Z85 text unless [Config.UserID] says otherwise) and metadata.
// The rules are pyzmq's and zauth's:
//
//   - Address lists: [Authenticator.Allow] and [Authenticator.Deny] are mutually exclusive
//     ([ErrAllowDeny]). With an allow list only listed addresses go on, and they must
//     still pass the CURVE check; with a deny list listed addresses are refused.
//     Addresses match exactly.
//   - Domains: an empty domain means "*". A domain that was not configured is refused
//     ("Unknown domain"); there is no fallback from "foo" to "*", as in pyzmq.
//   - Per domain, one CURVE policy: any key ([CurveAllowAny]), a callback
//     ([Authenticator.ConfigureCurveCallback]) or a key directory
//     ([Authenticator.ConfigureCurve], [Authenticator.ConfigureCurveDir]). Configuring a
//     domain replaces its policy. Unlike pyzmq, whose allow-any flag is global, allow-any
//     is per domain; for Cylc, which uses the one domain "*", this is the same.
//   - Refusals get 400 with a reason ("Unknown domain", "Unknown key", "Address not
//     allowed", "Address denied", "Unsupported mechanism"); a failing or panicking
//     callback gets 500, and so does every request after Close. A callback error that
//     wraps [ErrTemporary] gets 300 instead: the server closes without ERROR, as libzmq
//     does for 300, and a libzmq client tries again later. Nothing else gives 300.
//
// Decisions are logged at debug level as "ALLOWED (CURVE)" or "DENIED (CURVE)" with the
// domain, the address and the key abbreviated to 8 characters; no secret is ever logged.
//
// Authorize takes no lock: the configuration is an immutable snapshot behind an atomic
// pointer, and each directory's key set is an immutable map keyed by [key.PublicKey]
// behind another, replaced whole by a reload.
//
// # Key directories
//
// [LayoutPyzmq] (what ConfigureCurve uses, and what Cylc writes) takes the files matching
// *.key directly in the directory; dotfiles are skipped and *.key_secret does not match.
// [LayoutZauth] takes every regular file in the tree, skipping dot entries and names
// ending in "_secret", like czmq's certificate store, and returns each certificate's
// metadata as ZAP metadata, like zauth. Certificates are parsed by the keystore package,
// as leniently as pyzmq and czmq do; a secret key found in a file is ignored and wiped.
//
// A file that cannot be used (unreadable, unparsable, not a regular file, or holding an
// all-zero or small-order key) is skipped and reported by name in [Stats] and in the log;
// the other files still count. The same key in several files is fine. Symbolic links to
// files are followed; FIFOs and devices are never opened.
//
// # Reloading
//
// Each key directory is watched with fsnotify, together with its parent, so that the
// directory being removed and created again (Cylc's housekeeping does rmtree, then
// makedirs) is noticed and the new directory watched; while the parent is gone too, its
// nearest existing ancestor is watched instead, so that the whole path made again is seen. Events are debounced: a rescan
// starts once the directory has been quiet for [Config.Debounce] (75 ms by default), and
// at the latest ten times that after the first event. Attribute-only events are ignored.
// A full rescan also happens when the directory is configured, when the watcher reports
// an overflow (lost events), every [Config.RescanInterval] (30 s by default; the fallback
// for NFS and other filesystems that deliver no events) and on [Authenticator.Reload].
//
// A rescan reads and parses every file again: contents count, not names, sizes or
// modification times, so replacing a key with another of the same size within the same
// second is seen (czmq's store misses it, czmq#2113). The new set is built aside and
// swapped in atomically; a request sees either the old set or the new one. Rescans of a
// directory never overlap.
//
//   - A directory that no longer exists gives an empty set: its keys are gone, and are
//     revoked. The directory must exist when it is configured.
//   - A directory that cannot be read (permissions, I/O errors, a file in its place) keeps
//     the last good set in force; the error is logged, returned by Reload and shown in
//     [Stats] until a rescan succeeds.
//
// [Authenticator.Reload] returns once the new sets are live. [Authenticator.Generation]
// increases, and the channel of [Authenticator.Reloaded] is closed, each time a new set
// or configuration goes live, so callers and tests can wait for a change without
// sleeping.
//
// # Revocation
//
// CURVE authenticates only during the handshake. So that "refused from then on" holds for
// connections already open, the server registers each allowed connection with
// [Authenticator.Track]; when a reload or a configuration change leaves its key in no
// allow-list, the connection is closed. Revocation goes by key, as Track has no domain: a
// key is still allowed while some domain's set holds it, or while some domain allows any
// key or asks a callback (which cannot be enumerated). A key revoked between the handshake
// and Track is closed at once. Connections are closed from their own goroutines, outside
// every lock. [Config.KeepRevoked] turns revocation off.
//
// # The ZAP wire protocol
//
// [Authenticator.ServeZAP] also answers ZAP requests (RFC 27 frames) sent over a ZMTP
// REP socket with the NULL mechanism, on a loopback TCP address or a Unix socket, for
// tools that speak ZAP; see [WireServer]. libzmq servers cannot use it: they reach their
// ZAP handler only through inproc in their own context.
//
// # Observability
//
// [Authenticator.Stats] returns a plain struct that marshals to JSON: decisions by
// reason, handshake outcomes by libzmq event name and code (fed by Observe), revoked and
// tracked connections, the key count, the generation, the last reload and the last error,
// and per domain its directory, files, bad files and whether it is watched.
package zap
