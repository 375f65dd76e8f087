package bench

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/keystore"
)

func writeAllowList(dir string, pub curve.PublicKey) error {
	if dir == "" {
		return errors.New("bench: --zap needs a key directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return keystore.WriteFileAtomic(filepath.Join(dir, "client_bench.key"), keystore.PublicCertificate(pub, time.Now()), 0o600)
}
