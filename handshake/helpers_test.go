package handshake

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/curvezmq/curvezmq/curve/key"
)

// The zmq_curve(7) test key pairs (see curve/key/testdata/keypairs.txt).
const (
	z85ClientPublic = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
	z85ClientSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
	z85ServerPublic = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	z85ServerSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
)

func pairFromZ85(t testing.TB, secret string) *key.KeyPair {
	t.Helper()
	s, err := key.ParseSecretKey([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	kp := key.NewKeyPair(s)
	return &kp
}

// detRand is a deterministic randomness source (SHA-256 in counter mode) for transcripts.
type detRand struct {
	seed    [32]byte
	counter uint64
	buf     []byte
}

func newDetRand(seed string) *detRand { return &detRand{seed: sha256.Sum256([]byte(seed))} }

func (r *detRand) Read(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if len(r.buf) == 0 {
			var in [40]byte
			copy(in[:], r.seed[:])
			binary.BigEndian.PutUint64(in[32:], r.counter)
			r.counter++
			h := sha256.Sum256(in[:])
			r.buf = h[:]
		}
		c := copy(p, r.buf)
		p, r.buf = p[c:], r.buf[c:]
	}
	return n, nil
}

type configs struct {
	client, server *Config
}

func newConfigs(t testing.TB) configs {
	srv := pairFromZ85(t, z85ServerSecret)
	cli := pairFromZ85(t, z85ClientSecret)
	return configs{
		client: &Config{KeyPair: cli, ServerKey: srv.Public, Metadata: Metadata{{PropSocketType, []byte("DEALER")}, {PropIdentity, []byte("client")}}},
		server: &Config{KeyPair: srv, Metadata: Metadata{{PropSocketType, []byte("ROUTER")}}, Domain: "global"},
	}
}

// transcript holds every command body of one handshake.
type transcript struct {
	hello, welcome, initiate, ready []byte
	client, server                  *Session
	c                               *Client
	s                               *Server
	req                             *Request
}

// run performs a handshake with decide as the authorizer and fails the test on any error.
func run(t testing.TB, cfg configs, decide func(*Request) Result) *transcript {
	t.Helper()
	tr, err := runErr(cfg, decide)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func runErr(cfg configs, decide func(*Request) Result) (*transcript, error) {
	tr := &transcript{}
	var err error
	if tr.c, err = NewClient(cfg.client); err != nil {
		return tr, err
	}
	if tr.s, err = NewServer(cfg.server); err != nil {
		return tr, err
	}
	if tr.hello, err = tr.c.Hello(nil); err != nil {
		return tr, err
	}
	if tr.welcome, err = tr.s.ReadHello(nil, tr.hello); err != nil {
		return tr, err
	}
	if tr.initiate, err = tr.c.ReadWelcome(nil, tr.welcome); err != nil {
		return tr, err
	}
	if tr.req, err = tr.s.ReadInitiate(tr.initiate); err != nil {
		return tr, err
	}
	res := Result{Status: StatusOK, UserID: tr.req.ClientKey.String()}
	if decide != nil {
		res = decide(tr.req)
	}
	if tr.ready, tr.server, err = tr.s.Answer(nil, res); err != nil {
		if tr.ready != nil {
			_, cerr := tr.c.ReadReady(tr.ready)
			return tr, joinErr{err, cerr}
		}
		return tr, err
	}
	tr.client, err = tr.c.ReadReady(tr.ready)
	return tr, err
}

// joinErr carries the server's and the client's errors of a refused handshake.
type joinErr struct{ server, client error }

func (j joinErr) Error() string {
	return "server: " + j.server.Error() + "; client: " + j.client.Error()
}
func (j joinErr) Unwrap() []error { return []error{j.server, j.client} }
