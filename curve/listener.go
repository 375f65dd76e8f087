package curve

import (
	"errors"
	"fmt"
	"net"

	"github.com/curvezmq/curvezmq/curve/key"
)

// Listener accepts CurveZMQ server connections.
type Listener struct {
	l         net.Listener
	cfg       *Config
	agreement *key.Agreement // the server's secret made ready once for every handshake
}

// Listen announces on addr ("tcp", "unix") and returns a Listener whose connections are
// CURVE servers with cfg.
func Listen(network, addr string, cfg *Config) (*Listener, error) {
	if err := cfg.checkPair(false); err != nil {
		return nil, err
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return &Listener{l: l, cfg: cfg, agreement: key.NewAgreement(&cfg.KeyPair.Secret)}, nil
}

// NewListener returns a Listener over inner.
func NewListener(inner net.Listener, cfg *Config) *Listener {
	return &Listener{l: inner, cfg: cfg, agreement: key.NewAgreement(&cfg.KeyPair.Secret)}
}

// Accept waits for the next connection and returns it as a server Conn; its handshake runs
// on first use or through Handshake.
func (l *Listener) Accept() (*Conn, error) {
	nc, err := l.l.Accept()
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil, fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return nil, err
	}
	c := Server(nc, l.cfg)
	c.agreement = l.agreement
	return c, nil
}

// Close stops listening.
func (l *Listener) Close() error { return l.l.Close() }

// Addr returns the listening address.
func (l *Listener) Addr() net.Addr { return l.l.Addr() }

// String describes the listener, never its keys.
func (l *Listener) String() string { return "curve.Listener(" + l.l.Addr().String() + ")" }

// Format prints String for every verb: fmt would otherwise reach the Config's secret key
// through the unexported field, where the key's own redacting methods cannot be called.
func (l *Listener) Format(f fmt.State, _ rune) { f.Write([]byte(l.String())) }
