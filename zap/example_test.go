package zap_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/zap"
)

// A Cylc-style allow-list: client_public_keys holds one pyzmq certificate per client.
func Example() {
	dir, err := os.MkdirTemp("", "client_public_keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	client, err := key.GenerateKeyPair(rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	cert := "#   ZeroMQ CURVE Public Certificate\n\nmetadata\ncurve\n" +
		"    public-key = \"" + client.Public.String() + "\"\n"
	path := filepath.Join(dir, "client_target.key")
	if err := os.WriteFile(path, []byte(cert), 0o600); err != nil {
		log.Fatal(err)
	}

	auth := zap.New(zap.Config{})
	defer auth.Close()
	if err := auth.ConfigureCurve("*", dir); err != nil {
		log.Fatal(err)
	}
	req := &handshake.Request{Address: "127.0.0.1", Mechanism: "CURVE", ClientKey: client.Public}
	r := auth.Authorize(context.Background(), req)
	fmt.Println(r.Status, r.StatusText, r.UserID == client.Public.String())

	// The watcher would notice by itself; Reload returns once the change is live.
	if err := os.Remove(path); err != nil {
		log.Fatal(err)
	}
	if err := auth.Reload(); err != nil {
		log.Fatal(err)
	}
	r = auth.Authorize(context.Background(), req)
	fmt.Println(r.Status, r.StatusText)
	// Output:
	// 200 OK true
	// 400 Unknown key
}
