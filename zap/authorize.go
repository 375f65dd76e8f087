package zap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/curvezmq/curvezmq/handshake"
)

// reason is why a request was decided the way it was. Its text is the RFC 27 status text
// (pyzmq's wording where pyzmq has one); its slug names its counter in [Stats].
type reason uint8

const (
	reasonOK reason = iota
	reasonUnknownDomain
	reasonUnknownKey
	reasonAddrNotAllowed
	reasonAddrDenied
	reasonMechanism
	reasonCallbackError
	reasonTemporary
	reasonClosed
	numReasons
)

var reasonInfo = [numReasons]struct {
	status int
	text   string
	slug   string
}{
	reasonOK:             {handshake.StatusOK, "OK", "ok"},
	reasonUnknownDomain:  {handshake.StatusDenied, "Unknown domain", "unknown_domain"},
	reasonUnknownKey:     {handshake.StatusDenied, "Unknown key", "unknown_key"},
	reasonAddrNotAllowed: {handshake.StatusDenied, "Address not allowed", "address_not_allowed"},
	reasonAddrDenied:     {handshake.StatusDenied, "Address denied", "address_denied"},
	reasonMechanism:      {handshake.StatusDenied, "Unsupported mechanism", "unsupported_mechanism"},
	reasonCallbackError:  {handshake.StatusInternalError, "Internal error", "callback_error"},
	reasonTemporary:      {handshake.StatusTemporary, "Temporary failure", "temporary"},
	reasonClosed:         {handshake.StatusInternalError, "Authenticator closed", "closed"},
}

// Authorize decides on one CURVE handshake (RFC 27). In order:
//
//  1. the address stage: with an allow list, an unlisted address gets 400 "Address not
//     allowed"; with a deny list, a listed address gets 400 "Address denied";
//  2. a mechanism other than CURVE (or empty, taken as CURVE) gets 400 "Unsupported
//     mechanism";
//  3. the domain (empty means "*") must be configured, exactly: no fallback from "foo"
//     to "*" (400 "Unknown domain");
//  4. the domain's policy: allow any; the callback (an error wrapping [ErrTemporary]
//     gives 300 "Temporary failure", any other error or a panic 500 "Internal error");
//     or the key set (400 "Unknown key").
//
// An allowed client gets 200 "OK" with the user id of [Config.UserID] (by default the
// key's Z85 text) and, with [LayoutZauth], its certificate's metadata. After Close every
// request gets 500. Authorize takes no lock: it reads an immutable snapshot.
func (a *Authenticator) Authorize(ctx context.Context, req *handshake.Request) handshake.Result {
	if a.closed.Load() {
		return a.decide(ctx, req, "", reasonClosed, keyEntry{})
	}
	p := a.policy.Load()
	if len(p.allow) != 0 {
		if _, ok := p.allow[req.Address]; !ok {
			return a.decide(ctx, req, "", reasonAddrNotAllowed, keyEntry{})
		}
	} else if _, ok := p.deny[req.Address]; ok {
		return a.decide(ctx, req, "", reasonAddrDenied, keyEntry{})
	}
	if req.Mechanism != "CURVE" && req.Mechanism != "" {
		return a.decide(ctx, req, "", reasonMechanism, keyEntry{})
	}
	domain := normDomain(req.Domain)
	dp := p.domains[domain]
	if dp == nil {
		return a.decide(ctx, req, domain, reasonUnknownDomain, keyEntry{})
	}
	switch dp.kind {
	case kindAllowAny:
		return a.decide(ctx, req, domain, reasonOK, keyEntry{})
	case kindCallback:
		ok, err := callCallback(ctx, dp.callback, domain, req)
		switch {
		case err != nil:
			a.log.Warn("zap: callback failed", "domain", domain, "key", req.ClientKey.Short(), "err", err)
			if errors.Is(err, ErrTemporary) {
				return a.decide(ctx, req, domain, reasonTemporary, keyEntry{})
			}
			return a.decide(ctx, req, domain, reasonCallbackError, keyEntry{})
		case ok:
			return a.decide(ctx, req, domain, reasonOK, keyEntry{})
		}
		return a.decide(ctx, req, domain, reasonUnknownKey, keyEntry{})
	}
	// A map lookup is not constant-time, and need not be: public keys are not secret,
	// and whether a key is in the set is exactly what the reply tells the peer anyway.
	e, ok := dp.src.set.Load().keys[req.ClientKey]
	if !ok {
		return a.decide(ctx, req, domain, reasonUnknownKey, keyEntry{})
	}
	return a.decide(ctx, req, domain, reasonOK, e)
}

// callCallback runs fn, turning a panic into an error.
func callCallback(ctx context.Context, fn CurveCallback, domain string, req *handshake.Request) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("zap: callback panicked: %v", r)
		}
	}()
	return fn(ctx, domain, req.ClientKey)
}

// decide counts, logs and builds the result for r; e is the key's entry when a key set
// allowed it.
func (a *Authenticator) decide(ctx context.Context, req *handshake.Request, domain string, r reason, e keyEntry) handshake.Result {
	a.counters.decisions[r].Add(1)
	info := &reasonInfo[r]
	if a.log.Enabled(ctx, slog.LevelDebug) {
		verdict := "ALLOWED"
		if r != reasonOK {
			verdict = "DENIED"
		}
		attrs := []slog.Attr{
			slog.String("domain", domain),
			slog.String("addr", req.Address),
			slog.String("key", req.ClientKey.Short()),
			slog.Int("status", info.status),
			slog.String("reason", info.text),
		}
		if e.file != "" {
			attrs = append(attrs, slog.String("file", e.file))
		}
		a.log.LogAttrs(ctx, slog.LevelDebug, verdict+" (CURVE)", attrs...)
	}
	res := handshake.Result{Status: info.status, StatusText: info.text}
	if r == reasonOK {
		if a.cfg.UserID != nil {
			res.UserID = a.cfg.UserID(req.ClientKey)
		} else {
			res.UserID = req.ClientKey.String()
		}
		if len(e.meta) != 0 {
			// The set is shared; the caller may edit its result.
			res.Metadata = make(handshake.Metadata, len(e.meta))
			for i, prop := range e.meta {
				res.Metadata[i] = handshake.Property{Name: prop.Name, Value: bytes.Clone(prop.Value)}
			}
		}
	}
	return res
}
