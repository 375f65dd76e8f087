package zap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
)

func TestDomains(t *testing.T) {
	a := newAuth(t, Config{})
	k := newKey(t)
	ctx := context.Background()

	// Nothing configured: every domain is unknown.
	if r := a.Authorize(ctx, request("", k)); r.Status != 400 || r.StatusText != "Unknown domain" || r.UserID != "" {
		t.Fatalf("unconfigured: got %+v", r)
	}
	// An empty domain means "*".
	if err := a.ConfigureCurve("", CurveAllowAny); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"", "*"} {
		r := a.Authorize(ctx, request(d, k))
		if r.Status != 200 || r.StatusText != "OK" || r.UserID != k.String() {
			t.Errorf("domain %q: got %+v, want 200 with the Z85 key as user id", d, r)
		}
	}
	// No fallback from a named domain to "*", as in pyzmq.
	if r := a.Authorize(ctx, request("global", k)); r.Status != 400 || r.StatusText != "Unknown domain" {
		t.Errorf("unconfigured named domain: got %+v", r)
	}
	// Allow-any is per domain.
	if err := a.ConfigureCurveCallback("global", func(context.Context, string, key.PublicKey) (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if r := a.Authorize(ctx, request("global", k)); r.Status != 400 || r.StatusText != "Unknown key" {
		t.Errorf("callback refusing: got %+v", r)
	}
	if r := a.Authorize(ctx, request("*", k)); r.Status != 200 {
		t.Errorf("allow-any domain after configuring another: got %+v", r)
	}
}

func TestCallback(t *testing.T) {
	allowed, other := newKey(t), newKey(t)
	var gotDomain string
	var gotDeadline bool
	a := newAuth(t, Config{UserID: func(k key.PublicKey) string { return "user-" + k.Short() }})
	err := a.ConfigureCurveCallback("", func(ctx context.Context, domain string, k key.PublicKey) (bool, error) {
		gotDomain = domain
		_, gotDeadline = ctx.Deadline()
		switch {
		case k == allowed:
			return true, nil
		case k == other:
			return false, errors.New("database down")
		}
		panic("unexpected key")
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	r := a.Authorize(ctx, request("", allowed))
	if r.Status != 200 || r.UserID != "user-"+allowed.Short() {
		t.Errorf("allowed: got %+v", r)
	}
	if gotDomain != "*" || !gotDeadline {
		t.Errorf("callback got domain %q, deadline %v; want \"*\" and the handshake deadline", gotDomain, gotDeadline)
	}
	if r := a.Authorize(ctx, request("", other)); r.Status != 500 || r.UserID != "" {
		t.Errorf("callback error: got %+v, want 500", r)
	}
	if r := a.Authorize(ctx, request("", newKey(t))); r.Status != 500 {
		t.Errorf("callback panic: got %+v, want 500", r)
	}
	if err := a.ConfigureCurveCallback("", nil); err == nil {
		t.Error("nil callback accepted")
	}
	st := a.Stats()
	if st.Allowed != 1 || st.Errors["callback_error"] != 2 {
		t.Errorf("stats: allowed %d, callback errors %d; want 1 and 2", st.Allowed, st.Errors["callback_error"])
	}
}

func TestAddressLists(t *testing.T) {
	k := newKey(t)
	ctx := context.Background()
	at := func(a *Authenticator, addr string) handshake.Result {
		return a.Authorize(ctx, &handshake.Request{Address: addr, Mechanism: "CURVE", ClientKey: k})
	}

	t.Run("allow", func(t *testing.T) {
		a := newAuth(t, Config{})
		if err := a.Allow("10.0.0.1", "::1"); err != nil {
			t.Fatal(err)
		}
		if err := a.Deny("10.0.0.2"); !errors.Is(err, ErrAllowDeny) {
			t.Fatalf("Deny after Allow: got %v, want ErrAllowDeny", err)
		}
		if r := at(a, "10.0.0.9"); r.Status != 400 || r.StatusText != "Address not allowed" {
			t.Errorf("unlisted: got %+v", r)
		}
		// Exact match only.
		if r := at(a, "10.0.0.10"); r.StatusText != "Address not allowed" {
			t.Errorf("prefix of a listed address: got %+v", r)
		}
		// A listed address must still pass the CURVE check.
		if r := at(a, "10.0.0.1"); r.Status != 400 || r.StatusText != "Unknown domain" {
			t.Errorf("listed, no domain: got %+v", r)
		}
		if err := a.ConfigureCurve("*", CurveAllowAny); err != nil {
			t.Fatal(err)
		}
		if r := at(a, "::1"); r.Status != 200 {
			t.Errorf("listed, allow any: got %+v", r)
		}
	})
	t.Run("deny", func(t *testing.T) {
		a := newAuth(t, Config{})
		if err := a.ConfigureCurve("*", CurveAllowAny); err != nil {
			t.Fatal(err)
		}
		if err := a.Deny("10.0.0.2"); err != nil {
			t.Fatal(err)
		}
		if err := a.Allow("10.0.0.1"); !errors.Is(err, ErrAllowDeny) {
			t.Fatalf("Allow after Deny: got %v, want ErrAllowDeny", err)
		}
		if r := at(a, "10.0.0.2"); r.Status != 400 || r.StatusText != "Address denied" {
			t.Errorf("denied: got %+v", r)
		}
		if r := at(a, "10.0.0.3"); r.Status != 200 {
			t.Errorf("not denied: got %+v", r)
		}
		st := a.Stats()
		if st.Denied["address_denied"] != 1 || st.Allowed != 1 {
			t.Errorf("stats: %+v", st)
		}
	})
}

func TestMechanism(t *testing.T) {
	a := newAuth(t, Config{})
	if err := a.ConfigureCurve("", CurveAllowAny); err != nil {
		t.Fatal(err)
	}
	r := a.Authorize(context.Background(), &handshake.Request{Mechanism: "PLAIN", ClientKey: newKey(t)})
	if r.Status != 400 || r.StatusText != "Unsupported mechanism" {
		t.Errorf("PLAIN: got %+v", r)
	}
}

func TestClosed(t *testing.T) {
	a := New(Config{})
	if err := a.ConfigureCurve("", CurveAllowAny); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if r := a.Authorize(context.Background(), request("", newKey(t))); r.Status != 500 {
		t.Errorf("after Close: got %+v, want 500", r)
	}
	if err := a.ConfigureCurve("", CurveAllowAny); !errors.Is(err, ErrClosed) {
		t.Errorf("ConfigureCurve after Close: %v", err)
	}
	if err := a.Reload(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reload after Close: %v", err)
	}
	c := newConn()
	a.Track(newKey(t), c)()
	if c.isClosed() {
		t.Error("Track after Close closed the connection")
	}
}

func TestConfigureMissingDirectory(t *testing.T) {
	a := newAuth(t, Config{})
	dir := t.TempDir()
	if err := a.ConfigureCurve("", filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: got %v, want fs.ErrNotExist", err)
	}
	file := writeKey(t, dir, "a.key", newKey(t))
	if err := a.ConfigureCurve("", file); !errors.Is(err, ErrNotDirectory) {
		t.Errorf("a file: got %v, want ErrNotDirectory", err)
	}
	if err := a.ConfigureCurveDir("", dir, Layout(9)); err == nil || !strings.HasPrefix(err.Error(), "zap: ") {
		t.Errorf("bad layout: got %v", err)
	}
	// Nothing was configured by the failures.
	if st := a.Stats(); len(st.Domains) != 0 {
		t.Errorf("domains after failed configuration: %+v", st.Domains)
	}
}

func TestObserveAndStatsJSON(t *testing.T) {
	a := newAuth(t, Config{})
	k := newKey(t)
	for _, ev := range []handshake.Event{
		{Kind: handshake.EventHandshakeSucceeded, Server: true, PeerKey: k},
		{Kind: handshake.EventHandshakeSucceeded, Server: true, PeerKey: k},
		{Kind: handshake.EventHandshakeFailedAuth, Code: 400, Server: true, PeerKey: k},
		{Kind: handshake.EventHandshakeFailedProtocol, Code: handshake.CodeCryptographic, Server: true},
		{Kind: handshake.EventHandshakeFailedNoDetail, Server: true},
		{Kind: handshake.EventHandshakeSucceeded, Server: false}, // client side: ignored
	} {
		a.Observe(ev)
	}
	st := a.Stats()
	h := st.Handshakes
	if h.Succeeded != 2 || h.FailedAuth["400"] != 1 || h.FailedProtocol["0x11000001"] != 1 || h.FailedNoDetail != 1 {
		t.Errorf("handshake stats: %+v", h)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"allowed", "denied", "errors", "temporary", "handshakes", "revoked", "tracked", "keys", "generation", "domains"} {
		if _, ok := back[field]; !ok {
			t.Errorf("JSON lacks %q: %s", field, b)
		}
	}
	if _, ok := back["last_reload"]; ok {
		t.Errorf("JSON has a zero last_reload: %s", b)
	}
}

// A callback error that wraps ErrTemporary gives 300, counted apart from the 500s.
func TestCallbackTemporary(t *testing.T) {
	a := newAuth(t, Config{})
	err := a.ConfigureCurveCallback("", func(context.Context, string, key.PublicKey) (bool, error) {
		return false, fmt.Errorf("key service busy: %w", ErrTemporary)
	})
	if err != nil {
		t.Fatal(err)
	}
	r := a.Authorize(context.Background(), request("", newKey(t)))
	if r.Status != handshake.StatusTemporary || r.StatusText != "Temporary failure" || r.UserID != "" {
		t.Fatalf("got %+v, want 300 Temporary failure", r)
	}
	if st := a.Stats(); st.Temporary != 1 || st.Errors["callback_error"] != 0 || st.Allowed != 0 {
		t.Errorf("stats: temporary %d, callback errors %d, allowed %d; want 1, 0, 0",
			st.Temporary, st.Errors["callback_error"], st.Allowed)
	}
}
