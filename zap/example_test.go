package zap_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/curvezmq/curvezmq/curve"
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

// A CURVE server wired to an Authenticator: a client is refused until its certificate is
// in the directory, and let in once it is.
func Example_server() {
	dir, err := os.MkdirTemp("", "client_public_keys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	auth := zap.New(zap.Config{})
	defer auth.Close()
	if err := auth.ConfigureCurve("*", dir); err != nil {
		log.Fatal(err)
	}

	serverKeys, _ := curve.GenerateKeyPair(nil)
	ln, err := curve.Listen("tcp", "127.0.0.1:0", &curve.Config{KeyPair: serverKeys, Authorizer: auth, Events: auth.Observe})
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.Handshake(context.Background()) == nil {
					c.Recv(nil) // serve the client; here, until it leaves
				}
			}()
		}
	}()

	clientKeys, _ := curve.GenerateKeyPair(nil)
	dial := func() error {
		c, err := curve.Dial(context.Background(), "tcp", ln.Addr().String(),
			&curve.Config{KeyPair: clientKeys, ServerKey: serverKeys.Public})
		if err == nil {
			c.Close()
		}
		return err
	}
	var refused *curve.AuthError
	if err := dial(); errors.As(err, &refused) {
		fmt.Println("refused with status", refused.Status)
	}

	cert := "metadata\ncurve\n    public-key = \"" + clientKeys.Public.String() + "\"\n"
	if err := os.WriteFile(filepath.Join(dir, "client.key"), []byte(cert), 0o600); err != nil {
		log.Fatal(err)
	}
	if err := auth.Reload(); err != nil { // or wait on auth.Reloaded() for the watcher
		log.Fatal(err)
	}
	fmt.Println("then:", dial())
	// Output:
	// refused with status 400
	// then: <nil>
}
