package handshake

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestFormatByValue: a Client or Server printed by value shows none of its secrets with any
// verb (Format has a value receiver), nor does a struct that holds them by value with %v,
// %+v, %#v or %x: fmt prints unexported fields by reflection, never through their Format,
// so the secrets sit behind a pointer, which fmt prints as an address. (With %s or %q on
// such a struct, fmt's bad-verb path follows that pointer: a limit of fmt we cannot close
// without hiding the keys from the package itself.)
func TestFormatByValue(t *testing.T) {
	cfg := newConfigs(t)
	c, err := NewClient(cfg.client)
	if err != nil {
		t.Fatal(err)
	}
	hello, err := c.Hello(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(cfg.server)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadHello(nil, hello); err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"client transient secret": c.transient.Secret.UnsafeBytes()[:],
		"HELLO box key":           c.helloKey[:],
		"server transient secret": s.transient.Secret.UnsafeBytes()[:],
		"cookie key":              s.cookieKey[:],
	}
	type holder struct {
		c Client
		s Server
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		for what, v := range map[string]any{"Client": *c, "Server": *s, "a struct holding both": holder{*c, *s}} {
			if _, ok := v.(holder); ok && (verb == "%s" || verb == "%q") {
				continue
			}
			out := fmt.Sprintf(verb, v)
			for name, b := range secrets {
				if strings.Contains(out, fmt.Sprint(b)) || strings.Contains(out, fmt.Sprintf("%x", b)) {
					t.Errorf("%s printed with %s shows the %s", what, verb, name)
				}
			}
		}
	}
}

// TestMaxMetadataNoCap: a MaxMetadata near math.MaxInt, meaning no cap, does not overflow
// into a negative limit that refuses every INITIATE or READY.
func TestMaxMetadataNoCap(t *testing.T) {
	cfg := newConfigs(t)
	cfg.server.MaxMetadata = math.MaxInt
	if _, err := runErr(cfg, nil); err != nil {
		t.Errorf("server MaxMetadata=MaxInt: %v", err)
	}
	cfg = newConfigs(t)
	cfg.client.MaxMetadata = math.MaxInt - 10
	if _, err := runErr(cfg, nil); err != nil {
		t.Errorf("client MaxMetadata=MaxInt-10: %v", err)
	}
}
