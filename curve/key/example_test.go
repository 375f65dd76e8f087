package key_test

import (
	"fmt"

	"github.com/curvezmq/curvezmq/curve/key"
)

// A secret key in Z85 gives its public key; the secret itself never prints.
func Example() {
	secret, err := key.ParseSecretKey([]byte("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"))
	if err != nil {
		panic(err)
	}
	pair := key.NewKeyPair(secret)
	fmt.Println(pair.Public)
	fmt.Println(pair.Secret)
	fmt.Printf("%+v\n", pair)
	// Output:
	// rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7
	// REDACTED
	// {Public:rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7 Secret:REDACTED}
}
