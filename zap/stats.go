package zap

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

// counters are updated lock-free by Authorize and under mu by Observe.
type counters struct {
	decisions [numReasons]atomic.Uint64
	revoked   atomic.Uint64

	mu             sync.Mutex
	succeeded      uint64
	failedNoDetail uint64
	failedAuth     map[int]uint64
	failedProtocol map[int]uint64
}

// Stats is a snapshot of an Authenticator's counters and key sets, for the CLI's auth
// command. It marshals to JSON as it is.
type Stats struct {
	// Allowed counts Authorize decisions with status 200.
	Allowed uint64 `json:"allowed"`
	// Denied counts Authorize decisions with status 400, by reason: "unknown_domain",
	// "unknown_key", "address_not_allowed", "address_denied", "unsupported_mechanism".
	Denied map[string]uint64 `json:"denied"`
	// Errors counts Authorize decisions with status 500, by reason: "callback_error",
	// "closed".
	Errors map[string]uint64 `json:"errors"`
	// Temporary counts Authorize decisions with status 300: callback errors wrapping
	// ErrTemporary.
	Temporary uint64 `json:"temporary"`
	// Handshakes counts the outcomes the engine reported through Observe.
	Handshakes HandshakeStats `json:"handshakes"`
	// Revoked counts the connections closed because their key was revoked.
	Revoked uint64 `json:"revoked"`
	// Tracked is the number of live connections registered with Track.
	Tracked int `json:"tracked"`
	// Keys is the number of distinct keys in all key directories.
	Keys int `json:"keys"`
	// Generation is the value of Authenticator.Generation.
	Generation uint64 `json:"generation"`
	// LastReload is the time the last successful rescan went live.
	LastReload time.Time `json:"last_reload,omitzero"`
	// LastError is the error of the first domain whose last rescan failed, if any.
	LastError string `json:"last_error,omitempty"`
	// Domains describes each configured domain, sorted by name.
	Domains []DomainStats `json:"domains"`
}

// HandshakeStats counts server-side handshake outcomes, with libzmq's monitor names.
type HandshakeStats struct {
	// Succeeded counts HANDSHAKE_SUCCEEDED.
	Succeeded uint64 `json:"succeeded"`
	// FailedAuth counts HANDSHAKE_FAILED_AUTH by ZAP status ("300", "400", "500").
	FailedAuth map[string]uint64 `json:"failed_auth"`
	// FailedProtocol counts HANDSHAKE_FAILED_PROTOCOL by ZMQ_PROTOCOL_ERROR_* value, in hex
	// ("0x11000001").
	FailedProtocol map[string]uint64 `json:"failed_protocol"`
	// FailedNoDetail counts HANDSHAKE_FAILED_NO_DETAIL (I/O errors, EOF, deadlines).
	FailedNoDetail uint64 `json:"failed_no_detail"`
}

// DomainStats describes the policy of one domain.
type DomainStats struct {
	// Domain is the ZAP domain, "*" for requests without one.
	Domain string `json:"domain"`
	// Policy is "allow-any", "callback" or "directory". The fields below are set for a
	// directory only.
	Policy string `json:"policy"`
	// Location is the key directory, absolute.
	Location string `json:"location,omitempty"`
	// Layout is "pyzmq" or "zauth".
	Layout string `json:"layout,omitempty"`
	// Keys is the number of distinct keys in the live set.
	Keys int `json:"keys"`
	// Files is the number of key files the last successful rescan read, good or bad.
	Files int `json:"files"`
	// BadFiles lists the files that rescan skipped, as "name: reason".
	BadFiles []string `json:"bad_files,omitempty"`
	// Missing reports that the directory did not exist at the last rescan (empty set).
	Missing bool `json:"missing,omitempty"`
	// Watching reports whether the directory is watched for changes; when false, only
	// periodic rescans and Reload pick changes up.
	Watching bool `json:"watching"`
	// LastReload is the time the last successful rescan went live.
	LastReload time.Time `json:"last_reload,omitzero"`
	// LastError is set when the last rescan failed and the previous set is still in force.
	LastError string `json:"last_error,omitempty"`
}

// Observe feeds the handshake counters from the engine's events; pass it as the server's
// event callback. Client-side events are ignored. It is safe for concurrent use.
func (a *Authenticator) Observe(ev handshake.Event) {
	if !ev.Server {
		return
	}
	c := &a.counters
	c.mu.Lock()
	switch ev.Kind {
	case handshake.EventHandshakeSucceeded:
		c.succeeded++
	case handshake.EventHandshakeFailedNoDetail:
		c.failedNoDetail++
	case handshake.EventHandshakeFailedAuth:
		if c.failedAuth == nil {
			c.failedAuth = map[int]uint64{}
		}
		c.failedAuth[ev.Code]++
	case handshake.EventHandshakeFailedProtocol:
		if c.failedProtocol == nil {
			c.failedProtocol = map[int]uint64{}
		}
		c.failedProtocol[ev.Code]++
	}
	c.mu.Unlock()
	if ev.Kind != handshake.EventHandshakeSucceeded {
		a.log.Debug("zap: handshake failed", "event", ev.String())
	}
}

// Stats returns a snapshot of the counters and key sets.
func (a *Authenticator) Stats() Stats {
	st := Stats{
		Denied:     map[string]uint64{},
		Errors:     map[string]uint64{},
		Revoked:    a.counters.revoked.Load(),
		Generation: a.gen.Load(),
		Domains:    []DomainStats{},
	}
	for r := range numReasons {
		n := a.counters.decisions[r].Load()
		switch info := reasonInfo[r]; {
		case r == reasonOK:
			st.Allowed = n
		case info.status == handshake.StatusDenied:
			st.Denied[info.slug] = n
		case info.status == handshake.StatusTemporary:
			st.Temporary += n
		default:
			st.Errors[info.slug] = n
		}
	}

	c := &a.counters
	c.mu.Lock()
	st.Handshakes = HandshakeStats{
		Succeeded:      c.succeeded,
		FailedNoDetail: c.failedNoDetail,
		FailedAuth:     map[string]uint64{},
		FailedProtocol: map[string]uint64{},
	}
	for code, n := range c.failedAuth {
		st.Handshakes.FailedAuth[fmt.Sprint(code)] = n
	}
	for code, n := range c.failedProtocol {
		st.Handshakes.FailedProtocol[fmt.Sprintf("0x%08x", code)] = n
	}
	c.mu.Unlock()

	a.trk.mu.Lock()
	for _, set := range a.trk.conns {
		st.Tracked += len(set)
	}
	a.trk.mu.Unlock()

	a.genMu.Lock()
	st.LastReload = a.lastReload
	a.genMu.Unlock()

	p := a.policy.Load()
	all := map[key.PublicKey]struct{}{}
	for _, d := range slices.Sorted(maps.Keys(p.domains)) {
		dp := p.domains[d]
		ds := DomainStats{Domain: d, Policy: dp.kind.String()}
		if src := dp.src; src != nil {
			set := src.set.Load()
			for k := range set.keys {
				all[k] = struct{}{}
			}
			ss := src.state()
			ds.Location, ds.Layout = src.dir, src.layout.String()
			ds.Keys, ds.Files, ds.Missing, ds.Watching = len(set.keys), ss.files, ss.missing, ss.watching
			ds.LastReload = ss.lastReload
			for _, fe := range ss.bad {
				ds.BadFiles = append(ds.BadFiles, fmt.Sprintf("%s: %v", fe.name, fe.err))
			}
			if ss.lastErr != nil {
				ds.LastError = ss.lastErr.Error()
				if st.LastError == "" {
					st.LastError = ds.LastError
				}
			}
		}
		st.Domains = append(st.Domains, ds)
	}
	st.Keys = len(all)
	return st
}
