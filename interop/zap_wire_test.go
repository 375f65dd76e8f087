package interop

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/keystore"
	"github.com/curvezmq/curvezmq/zap"
)

// A pyzmq REQ socket (NULL mechanism) sends ZAP requests, frame by frame as libzmq's
// zap_client.cpp builds them, to zap's WireServer and gets the Authenticator's decisions
// as libzmq expects them: version "1.0", the request id, the status code, the status text,
// the user id, the metadata. A key written into the watched directory is allowed once the
// authenticator has reloaded, with no restart.
func TestLibzmqZAPRequestsToWireServer(t *testing.T) {
	t.Parallel()
	python(t)
	cli, stranger := newKeyPair(t), newKeyPair(t)
	dir := t.TempDir()
	auth := zap.New(zap.Config{})
	t.Cleanup(func() { auth.Close() })
	if err := auth.ConfigureCurve("*", dir); err != nil {
		t.Fatal(err)
	}
	w, err := auth.ServeZAP("tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	py := startPeer(t, "client.py", "--type=REQ", "--connect="+w.Endpoint(), "--null")
	py.ready()

	request := func(id, version, domain string, key []byte, extra ...[]byte) [][]byte {
		return append(msg(version, id, domain, "127.0.0.1", "IDENT", "CURVE"), append([][]byte{key}, extra...)...)
	}
	ask := func(what string, req [][]byte, want ...string) {
		t.Helper()
		got := py.request(replyWait, req)
		if len(got) != 1 {
			t.Fatalf("%s: %d replies", what, len(got))
		}
		wantMsg(t, what, got[0], msg(want...))
	}

	ask("unknown key", request("1", "1.0", "", cli.Public[:]), "1.0", "1", "400", "Unknown key", "", "")
	if err := os.WriteFile(filepath.Join(dir, "client.key"), keystore.PublicCertificate(cli.Public, time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	zapWaitKeys(t, auth, 1)
	ask("allowed key", request("2", "1.0", "", cli.Public[:]), "1.0", "2", "200", "OK", cli.Public.String(), "")
	// An unconfigured domain is refused: no fallback to "*", as in pyzmq.
	ask("other domain", request("3", "1.0", "global", cli.Public[:]), "1.0", "3", "400", "Unknown domain", "", "")
	ask("stranger", request("4", "1.0", "*", stranger.Public[:]), "1.0", "4", "400", "Unknown key", "", "")
	ask("version 2.0", request("5", "2.0", "", cli.Public[:]), "1.0", "5", "400", "Invalid version", "", "")
	ask("two credentials", request("6", "1.0", "", cli.Public[:], cli.Public[:]), "1.0", "6", "400", "Invalid credentials", "", "")
	ask("not enough frames", msg("1.0", "7", ""), "1.0", "7", "400", "Not enough frames", "", "")
}
