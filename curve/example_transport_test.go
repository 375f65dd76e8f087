package curve_test

import (
	"context"
	"fmt"
	"log"

	"github.com/go-zeromq/zmq4"

	"github.com/curvezmq/curvezmq/curve"
)

// A zmq4 REQ/REP pair over CURVE: the server admits only the client's key.
func ExampleWithConfig() {
	server, _ := curve.GenerateKeyPair(nil)
	client, _ := curve.GenerateKeyPair(nil)
	ctx := context.Background()

	rep := zmq4.NewRep(curve.WithConfig(ctx, &curve.Config{
		KeyPair: server, Server: true, Authorizer: curve.AllowKeys(client.Public),
	}))
	defer rep.Close()
	if err := rep.Listen("curve://127.0.0.1:0"); err != nil {
		log.Fatal(err)
	}

	req := zmq4.NewReq(curve.WithConfig(ctx, &curve.Config{KeyPair: client, ServerKey: server.Public}))
	defer req.Close()
	if err := req.Dial("curve://" + rep.Addr().String()); err != nil {
		log.Fatal(err)
	}

	req.Send(zmq4.NewMsgString("ping"))
	msg, _ := rep.Recv()
	fmt.Printf("server got %q\n", msg.Frames[0])
	rep.Send(zmq4.NewMsgString("pong"))
	msg, _ = req.Recv()
	fmt.Printf("client got %q\n", msg.Frames[0])
	// Output:
	// server got "ping"
	// client got "pong"
}
