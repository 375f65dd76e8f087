package zap

import (
	"strings"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/handshake"
	"github.com/curvezmq/curvezmq/keystore"
)

// readKeyFile reads the certificate at path (a bounded read; the parser is as lenient as
// pyzmq's and czmq's) and returns its public key and, if withMeta, its metadata as ZAP
// metadata. A secret key in the file is ignored and wiped.
func readKeyFile(path string, withMeta bool) (key.PublicKey, handshake.Metadata, error) {
	cert, err := keystore.ReadCertificate(path)
	if err != nil {
		return key.PublicKey{}, nil, err
	}
	cert.Wipe()
	var meta handshake.Metadata
	if withMeta {
		for _, p := range cert.Metadata {
			// The server sets User-Id itself; a name libzmq cannot encode is dropped.
			if p.Name == "" || len(p.Name) > 255 || strings.EqualFold(p.Name, handshake.PropUserID) {
				continue
			}
			meta = append(meta, handshake.Property{Name: p.Name, Value: []byte(p.Value)})
		}
	}
	return cert.Public, meta, nil
}
