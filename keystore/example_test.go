package keystore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/keystore"
)

// A key pair written as pyzmq's NAME.key and NAME.key_secret, and read back. The secret
// key never prints.
func Example() {
	dir, err := os.MkdirTemp("", "keystore-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	secret, err := key.ParseSecretKey([]byte("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"))
	if err != nil {
		panic(err)
	}
	pair := key.NewKeyPair(secret)
	now := time.Date(2025, 3, 4, 10, 11, 12, 123456000, time.UTC)

	public := keystore.PublicCertificate(pair.Public, now)
	os.Stdout.Write(public)
	if err := keystore.WriteFileAtomic(filepath.Join(dir, "server.key"), public, 0o600); err != nil {
		panic(err)
	}
	path := filepath.Join(dir, "server.key_secret")
	if err := keystore.WriteFileAtomic(path, keystore.SecretCertificate(&pair, now), 0o600); err != nil {
		panic(err)
	}

	cert, err := keystore.ReadCertificate(path)
	if err != nil {
		panic(err)
	}
	fmt.Println(cert.Public, cert.HasSecret, cert.Secret)
	// Output:
	// #   ****  Generated on 2025-03-04 10:11:12.123456 by pyzmq  ****
	// #   ZeroMQ CURVE Public Certificate
	// #   Exchange securely, or use a secure mechanism to verify the contents
	// #   of this file after exchange. Store public certificates in your home
	// #   directory, in the .curve subdirectory.
	//
	// metadata
	// curve
	//     public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
	// rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7 true REDACTED
}

// The scheduler's side of a run: claim the service directory, discard the last run's keys,
// make new ones, and list the authenticator's allow-list.
func Example_scheduler() {
	runDir, err := os.MkdirTemp("", "keystore-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(runDir)
	srv := keystore.ServiceDir(runDir)

	lock, err := keystore.ClaimService(srv, nil)
	if err != nil {
		panic(err) // another scheduler runs here: ErrLocked or *AliveError
	}
	defer lock.Unlock()
	if err := keystore.KeyHousekeeping(srv); err != nil {
		panic(err)
	}
	pair, err := keystore.CreateServerKeys(srv, nil)
	if err != nil {
		panic(err)
	}
	defer pair.Wipe()

	allowed, err := keystore.ReadPublicKeys(filepath.Join(srv, keystore.ClientPublicKeysDirName))
	if err != nil {
		panic(err)
	}
	for _, k := range allowed {
		fmt.Println(k.Name, k.Public == pair.Public)
	}
	// Output:
	// client_localhost.key true
}
