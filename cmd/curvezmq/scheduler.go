package main

// The scheduler: the main job of a workflow run, the way Cylc 8's scheduler runs its
// network side.
//
// Start-up, in Cylc's order:
//
//  1. The run directory is created if needed (.service 0700, log/scheduler). The service
//     directory is claimed (keystore.ClaimService: an flock on .service, then Cylc's
//     contact-file liveness check). A live scheduler, or one holding the lock, makes this one
//     refuse with exit 4 before it touches anything: its keys, contact file and log stay as
//     they are. A stale contact file (its process is gone) is removed.
//  2. The log file log/scheduler/log is opened (appended to, mode 0600: it names clients
//     and their abbreviated keys, nothing secret, but nobody else needs it).
//  3. Keys of a previous run are discarded and new server keys made (KeyHousekeeping,
//     CreateServerKeys): server.key, server.key_secret, client.key_secret and
//     client_public_keys/client_localhost.key.
//  4. The authenticator (package zap) watches client_public_keys/ for domain "*", as Cylc's
//     ThreadAuthenticator with configure_curve(domain='*', location=...); REP, then PUB, are
//     bound on all interfaces as CURVE servers behind it ("curve://*:PORT" is 0.0.0.0:PORT).
//     Ports are taken at random from [MIN, MAX), at most 100 tries each, as pyzmq's
//     bind_to_random_port does; 0-0 lets the system choose (what tests use). Cylc binds
//     exactly port MIN when MIN == MAX, which cannot serve two sockets, so MIN-MIN is
//     refused as a usage error. A bind failure is exit 1.
//  5. The contact file is written last, once both ports are known.
//
// Requests on REP are Cylc's JSON: {"command": C, "args": {...}, "meta": {...}}, args and
// meta optional, one frame. Every request gets a reply, {"data": ...} or {"error":
// {"message": ...}}, malformed JSON and unknown commands included. Commands: ping (data
// "pong"), stop (replies, then shuts down) and auth (the authenticator's Stats: counters,
// key count, generation, key directory). Requests are handled one at a time.
//
// PUB publishes multipart [topic, payload] events: [b"command", {"command": C}] after each
// request that was carried out (so a subscriber can tell that its subscription is live),
// and [b"shutdown", reason] when the scheduler stops.
//
// Shutdown, on a stop request, SIGINT or SIGTERM, in Cylc's order: stop serving requests,
// publish the shutdown event, close REP and PUB and stop the authenticator; run the shutdown
// hooks (remote tidy of install targets, once they exist); delete the keys; delete the
// contact file last (its presence means "running"); release the lock. Exit 0, or 1 when a
// step failed (it is logged; the later steps still run). Every step is bounded in time;
// further signals during shutdown are logged and otherwise ignored.
//
// zmq4 hands a message to its connection from a goroutine of its own and has no flush, so
// a socket closed right after Send may drop the message (the reply to stop, the shutdown
// event). The scheduler therefore waits socketLinger before closing its sockets, as
// libzmq's ZMQ_LINGER lets queued messages go; the CURVE connections then flush what they
// hold when closed.
//
// Logging: log/slog text lines to stderr (INFO and up) and to log/scheduler/log (DEBUG and
// up: each handshake and each authenticator decision, ALLOWED or DENIED, with the client's
// address and its key abbreviated). No secret key is ever logged.
//
// Exit codes: 0 clean shutdown; 1 bad usage, a start-up failure or a failed cleanup step;
// 4 another scheduler runs on this run directory.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	mathrand "math/rand/v2"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/keystore"
	"github.com/curvezmq/curvezmq/rsyncx"
	"github.com/curvezmq/curvezmq/zap"
)

const schedulerUsage = `usage: curvezmq scheduler [--run-dir DIR] [--id ID] [--host HOST] [--ports MIN-MAX]

Runs a workflow's scheduler in the foreground until "curvezmq client stop", SIGINT or
SIGTERM: makes new keys in DIR/.service, serves requests on a CURVE REP socket and events on
a CURVE PUB socket, and writes DIR/.service/contact. At shutdown it removes the keys and the
contact file. It logs to stderr and to DIR/log/scheduler/log.

flags:
  --run-dir DIR    the run directory (default: $HOME/curvezmq-run/ID)
  --id ID          the workflow id, possibly nested as in flow/run1 (default: DIR's base name)
  --host HOST      the host name clients connect to, written to the contact file
                   (default: this machine's name if it resolves to a local address,
                   else 127.0.0.1); the sockets listen on all interfaces
  --ports MIN-MAX  take the two ports at random from [MIN, MAX), or any free ports
                   with 0-0 (default 43001-43101)

Exit status: 0 after a clean shutdown, 1 on failure, 4 when another scheduler is running
on the run directory.
`

const (
	defaultPortMin = 43001
	defaultPortMax = 43101
	// bindTries is how many random ports of the range are tried per socket (pyzmq's
	// bind_to_random_port default).
	bindTries = 100
	// socketLinger is how long queued messages get before the sockets close (see above).
	socketLinger = 200 * time.Millisecond
	// stepTimeout bounds each shutdown step that could block (closing a socket, the
	// authenticator, a shutdown hook).
	stepTimeout = 5 * time.Second
	// sendTimeout bounds a reply that cannot be queued (a client that stops reading), so
	// that the request loop, and with it a shutdown, is never held longer (zmq4's default
	// is five minutes).
	sendTimeout = 5 * time.Second
	// Heartbeats end connections to peers that vanished without closing (zmq4 would keep
	// them for ever); libzmq answers PINGs by itself, so live idle clients are not affected.
	heartbeatInterval = 30 * time.Second
	heartbeatTimeout  = 90 * time.Second
)

func init() {
	register("scheduler", command{
		summary: "run a workflow's scheduler: keys, CURVE REP and PUB sockets, contact file",
		run:     runScheduler,
	})
}

// request is a Cylc request: {"command": ..., "args": {...}, "meta": {...}}.
type request struct {
	Command string          `json:"command"`
	Args    json.RawMessage `json:"args,omitempty"`
	Meta    json.RawMessage `json:"meta,omitempty"`
}

// requestHandler carries out one command and returns the reply's data, or an error whose
// text becomes the reply's error message.
type requestHandler func(s *scheduler, req *request) (any, error)

// shutdownHook is a step of the shutdown between closing the sockets and deleting the keys
// (Cylc's remote tidy). It gets stepTimeout.
type shutdownHook struct {
	name string
	run  func(ctx context.Context) error
}

// scheduler is one run of the scheduler. Requests are handled on one goroutine, so handlers
// need no locking among themselves.
type scheduler struct {
	id, runDir, srvDir string
	host               string
	portMin, portMax   int
	getenv             func(string) string

	log     *slog.Logger
	logFile *os.File
	lock    *keystore.Lock
	cfg     *curve.Config // holds the server key pair, wiped at shutdown
	auth    *zap.Authenticator
	rep     zmq4.Socket
	pub     zmq4.Socket
	cancel  context.CancelFunc // the sockets' context
	port    int
	pubPort int

	contactWritten bool
	handlers       map[string]requestHandler
	hooks          []shutdownHook
	stopping       chan string // a shutdown request with its reason (capacity 1)
}

func runScheduler(e *env, args []string) int {
	fs := flag.NewFlagSet("scheduler", flag.ContinueOnError)
	runDirFlag := fs.String("run-dir", "", "")
	idFlag := fs.String("id", "", "")
	hostFlag := fs.String("host", "", "")
	portsFlag := fs.String("ports", fmt.Sprintf("%d-%d", defaultPortMin, defaultPortMax), "")
	if code, ok := parseFlags(e, fs, schedulerUsage, args); !ok {
		return code
	}
	bad := func(format string, a ...any) int { return usageError(e, "scheduler", schedulerUsage, format, a...) }
	if fs.NArg() != 0 {
		return bad("unexpected arguments %q", fs.Args())
	}
	s := &scheduler{
		handlers: map[string]requestHandler{
			"ping": handlePing,
			"stop": handleStop,
			"auth": handleAuth,
		},
		stopping: make(chan string, 1),
		getenv:   e.getenv,
	}
	var err error
	switch {
	case *runDirFlag != "":
		if s.runDir, err = absRunDir(*runDirFlag); err != nil {
			return bad("%v", err)
		}
		s.id = *idFlag
		if s.id == "" {
			s.id = filepath.Base(s.runDir)
			if err := checkID(s.id); err != nil {
				return bad("%v (give --id)", err)
			}
		}
	case *idFlag != "":
		s.id = *idFlag
		if err := checkID(s.id); err != nil {
			return bad("%v", err)
		}
		if s.runDir, err = defaultRunDir(e.getenv("HOME"), s.id); err != nil {
			return bad("%v", err)
		}
	default:
		return bad("give --run-dir or --id")
	}
	if err := checkID(s.id); err != nil {
		return bad("%v", err)
	}
	s.srvDir = keystore.ServiceDir(s.runDir)
	if s.portMin, s.portMax, err = parsePorts(*portsFlag); err != nil {
		return bad("%v", err)
	}
	s.host = *hostFlag
	if s.host != "" && strings.IndexFunc(s.host, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return bad("--host %q contains whitespace or a control character", s.host)
	}

	// Signals stay caught until the process exits: a second one during or just after the
	// cleanup must not cut it short or change the exit status.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)

	stderrHandler := slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	s.log = slog.New(stderrHandler)
	if code := s.claim(); code != exitOK {
		return code
	}
	if err := s.openLog(stderrHandler); err != nil {
		s.log.Error("cannot open the log file", "err", err)
		s.lock.Unlock()
		return exitFailed
	}
	defer s.logFile.Close()
	if err := s.start(); err != nil {
		s.log.Error("could not start", "err", err)
		s.shutdown("start-up failed", sigs)
		return exitFailed
	}
	reason := s.serve(sigs)
	if !s.shutdown(reason, sigs) {
		return exitFailed
	}
	return exitOK
}

// parsePorts reads MIN-MAX.
func parsePorts(v string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(v, "-")
	if ok {
		lo, err = strconv.Atoi(a)
		if err == nil {
			hi, err = strconv.Atoi(b)
		}
	}
	switch {
	case !ok || err != nil:
		return 0, 0, fmt.Errorf("--ports %q: want MIN-MAX", v)
	case lo < 0 || hi > 65535 || lo > hi:
		return 0, 0, fmt.Errorf("--ports %q: want 0 <= MIN <= MAX <= 65535", v)
	case lo == 0 && hi != 0:
		return 0, 0, fmt.Errorf("--ports %q: port 0 only as 0-0 (any free port)", v)
	case lo != 0 && hi-lo < 2:
		return 0, 0, fmt.Errorf("--ports %q: [MIN, MAX) must hold two ports, one per socket (0-0: any free ports)", v)
	}
	return lo, hi, nil
}

// claim creates the run directory and takes the service directory, or returns the exit
// code after saying why not.
func (s *scheduler) claim() int {
	if err := os.MkdirAll(s.runDir, 0o755); err != nil {
		s.log.Error("cannot create the run directory", "err", err)
		return exitFailed
	}
	lock, err := keystore.ClaimService(s.srvDir, func(format string, a ...any) {
		s.log.Info(fmt.Sprintf(format, a...))
	})
	const busy = "another scheduler is running on this run directory; nothing was changed"
	var alive *keystore.AliveError
	switch {
	case errors.As(err, &alive):
		s.log.Error(busy, "id", alive.ID, "host", alive.Host, "port", alive.Port, "pid", alive.PID, "contact", alive.Path)
		return exitNotRunning
	case errors.Is(err, keystore.ErrLocked):
		// Its lock says so; its contact file, if written yet, says where it is.
		c, _ := keystore.ReadContact(s.srvDir)
		s.log.Error(busy, "id", c[keystore.ContactID], "host", c[keystore.ContactHost], "port", c[keystore.ContactPort],
			"pid", c[keystore.ContactPID], "service_dir", s.srvDir)
		return exitNotRunning
	case err != nil:
		s.log.Error("cannot claim the run directory", "err", err)
		return exitFailed
	}
	s.lock = lock
	return exitOK
}

// openLog opens log/scheduler/log and makes the logger write to it (DEBUG and up) as well
// as to stderr.
func (s *scheduler) openLog(stderrHandler slog.Handler) error {
	dir := filepath.Join(s.runDir, "log", "scheduler")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	s.logFile = f
	s.log = slog.New(slog.NewMultiHandler(stderrHandler,
		slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})))
	return nil
}

// start makes the keys, binds the sockets and writes the contact file.
func (s *scheduler) start() error {
	s.log.Info("scheduler starting", "id", s.id, "run_dir", s.runDir, "pid", os.Getpid(), "version", version)
	if err := keystore.KeyHousekeeping(s.srvDir); err != nil {
		return err
	}
	kp, err := keystore.CreateServerKeys(s.srvDir, nil)
	if err != nil {
		return err
	}
	s.log.Info("server keys created", "public_key", kp.Public.Short())

	s.auth = zap.New(zap.Config{Logger: s.log})
	if err := s.auth.ConfigureCurve(zap.DefaultDomain, filepath.Join(s.srvDir, keystore.ClientPublicKeysDirName)); err != nil {
		kp.Wipe()
		return err
	}
	s.cfg = &curve.Config{
		KeyPair:           kp,
		Server:            true,
		Authorizer:        s.auth,
		Events:            s.observe,
		HeartbeatInterval: heartbeatInterval,
		HeartbeatTimeout:  heartbeatTimeout,
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ctx = curve.WithConfig(ctx, s.cfg)
	zlog := zmq4.WithLogger(slog.NewLogLogger(s.log.Handler(), slog.LevelWarn))
	s.rep = zmq4.NewRep(ctx, zlog, zmq4.WithTimeout(sendTimeout))
	if s.port, err = s.bind(s.rep); err != nil {
		return fmt.Errorf("could not start the ZMQ server: REP socket: %w", err)
	}
	s.pub = zmq4.NewPub(ctx, zlog, zmq4.WithTimeout(sendTimeout))
	if s.pubPort, err = s.bind(s.pub); err != nil {
		return fmt.Errorf("could not start the ZMQ server: PUB socket: %w", err)
	}
	return s.writeContact()
}

// bind listens on a port of the range on all interfaces and returns the port.
func (s *scheduler) bind(sock zmq4.Socket) (int, error) {
	ports := []int{0} // 0-0
	if s.portMax != 0 {
		ports = mathrand.Perm(s.portMax - s.portMin)[:min(bindTries, s.portMax-s.portMin)]
		for i := range ports {
			ports[i] += s.portMin
		}
	}
	var err error
	for _, p := range ports {
		if err = sock.Listen(fmt.Sprintf("%s://*:%d", curve.TransportTCP, p)); err == nil {
			addr, ok := sock.Addr().(*net.TCPAddr)
			if !ok {
				return 0, fmt.Errorf("unexpected listening address %v", sock.Addr())
			}
			return addr.Port, nil
		}
	}
	if s.portMax != 0 {
		return 0, fmt.Errorf("no free port in %d-%d after %d tries: %w", s.portMin, s.portMax, len(ports), err)
	}
	return 0, err
}

// writeContact writes Cylc's contact file.
func (s *scheduler) writeContact() error {
	cmd, err := keystore.ProcessCommand(os.Getpid())
	if err != nil {
		return fmt.Errorf("reading this process's command line for the contact file: %w", err)
	}
	if s.host == "" {
		s.host = defaultHost()
	}
	owner := s.getenv("USER")
	if u, err := user.Current(); err == nil {
		owner = u.Username
	}
	runUUID, err := newUUID()
	if err != nil {
		return err
	}
	c := keystore.Contact{
		keystore.ContactAPI:         keystore.ContactAPIVersion,
		keystore.ContactVersion:     version,
		keystore.ContactCommand:     cmd,
		keystore.ContactHost:        s.host,
		keystore.ContactID:          s.id,
		keystore.ContactOwner:       owner,
		keystore.ContactPID:         strconv.Itoa(os.Getpid()),
		keystore.ContactPort:        strconv.Itoa(s.port),
		keystore.ContactPublishPort: strconv.Itoa(s.pubPort),
		keystore.ContactRunDir:      s.runDir,
		keystore.ContactUUID:        runUUID,
		keystore.ContactCylcPath:    "None",
		keystore.ContactSSHCommand:  rsyncx.DefaultSSHCommand,
		keystore.ContactLoginShell:  "True",
	}
	if err := keystore.WriteContact(s.srvDir, c); err != nil {
		return err
	}
	s.contactWritten = true
	s.log.Info("scheduler started", "id", s.id, "host", s.host, "port", s.port, "publish_port", s.pubPort,
		"pid", os.Getpid())
	return nil
}

// defaultHost returns this machine's host name if it resolves to an address of a local
// interface (loopback included), else 127.0.0.1: the name clients are told to connect to.
func defaultHost() string {
	name, err := os.Hostname()
	if err != nil || name == "" {
		return "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil {
		return "127.0.0.1"
	}
	local, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ip := net.ParseIP(a)
		if ip == nil {
			continue
		}
		if ip.IsLoopback() {
			return name
		}
		for _, l := range local {
			if n, ok := l.(*net.IPNet); ok && n.IP.Equal(ip) {
				return name
			}
		}
	}
	return "127.0.0.1"
}

// newUUID returns a random (version 4) UUID.
func newUUID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[:4], u[4:6], u[6:8], u[8:10], u[10:]), nil
}

// observe feeds the authenticator's counters and logs each handshake at debug level.
func (s *scheduler) observe(ev curve.Event) {
	s.auth.Observe(ev)
	s.log.Debug("handshake", "event", ev.String())
}

// serve answers requests until a stop request or a signal, and returns the reason.
func (s *scheduler) serve(sigs <-chan os.Signal) string {
	msgs := make(chan zmq4.Msg)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		for {
			msg, err := s.rep.Recv()
			if err != nil {
				select {
				case <-quit:
					return
				default:
				}
				if errors.Is(err, context.Canceled) {
					return
				}
				// zmq4 refuses a message without the REQ envelope; nothing can be answered.
				s.log.Warn("receiving a request", "err", err)
				continue
			}
			select {
			case msgs <- msg:
			case <-quit:
				return
			}
		}
	}()
	for {
		select {
		case msg := <-msgs:
			reply := s.handle(msg)
			if err := s.rep.Send(zmq4.NewMsg(reply)); err != nil {
				s.log.Warn("sending a reply", "err", err)
			}
			select {
			case reason := <-s.stopping:
				return reason
			default:
			}
		case reason := <-s.stopping:
			return reason
		case sig := <-sigs:
			return "signal " + signalName(sig)
		}
	}
}

func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// requestStop asks the serving loop to shut down with reason; the first request wins.
func (s *scheduler) requestStop(reason string) {
	select {
	case s.stopping <- reason:
	default:
	}
}

// handle answers one request: {"data": ...} or {"error": {"message": ...}}.
func (s *scheduler) handle(msg zmq4.Msg) []byte {
	data, err := s.dispatch(msg)
	var reply any
	if err != nil {
		reply = map[string]any{"error": map[string]string{"message": err.Error()}}
	} else {
		reply = map[string]any{"data": data}
	}
	b, err := json.Marshal(reply)
	if err != nil {
		s.log.Error("encoding a reply", "err", err)
		b, _ = json.Marshal(map[string]any{"error": map[string]string{"message": "internal error: cannot encode the reply"}})
	}
	return b
}

func (s *scheduler) dispatch(msg zmq4.Msg) (any, error) {
	if len(msg.Frames) != 1 {
		return nil, fmt.Errorf("malformed request: want one frame of JSON, got %d frames", len(msg.Frames))
	}
	body := bytes.TrimSpace(msg.Frames[0])
	switch {
	case !json.Valid(body):
		return nil, errors.New("malformed request: not JSON")
	case !bytes.HasPrefix(body, []byte("{")):
		return nil, errors.New("malformed request: not a JSON object")
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("malformed request: %q is a JSON %s", te.Field, te.Value)
		}
		return nil, fmt.Errorf("malformed request: %v", err)
	}
	if req.Command == "" {
		return nil, errors.New(`malformed request: no "command"`)
	}
	if a := strings.TrimSpace(string(req.Args)); a != "" && a != "null" && !strings.HasPrefix(a, "{") {
		return nil, errors.New(`malformed request: "args" must be an object`)
	}
	h, ok := s.handlers[req.Command]
	if !ok {
		return nil, fmt.Errorf("unknown command %q (known: %s)", req.Command, strings.Join(slices.Sorted(maps.Keys(s.handlers)), ", "))
	}
	s.log.Debug("request", "command", req.Command)
	data, err := h(s, &req)
	if err == nil {
		ev, _ := json.Marshal(map[string]string{"command": req.Command})
		s.publish("command", ev)
	}
	return data, err
}

// publish sends one event on PUB.
func (s *scheduler) publish(topic string, payload []byte) {
	if s.pub == nil {
		return
	}
	if err := s.pub.SendMulti(zmq4.NewMsgFrom([]byte(topic), payload)); err != nil {
		s.log.Warn("publishing an event", "topic", topic, "err", err)
	}
}

func handlePing(*scheduler, *request) (any, error) { return "pong", nil }

func handleStop(s *scheduler, _ *request) (any, error) {
	s.log.Info("stop requested")
	s.requestStop("stop requested")
	return "stopping", nil
}

func handleAuth(s *scheduler, _ *request) (any, error) { return s.auth.Stats(), nil }

// shutdown stops everything in Cylc's order and reports whether every step succeeded.
// It copes with a scheduler that did not finish starting.
func (s *scheduler) shutdown(reason string, sigs <-chan os.Signal) bool {
	s.log.Info("shutting down", "reason", reason)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case sig := <-sigs:
				s.log.Warn("already shutting down; finishing the cleanup", "signal", signalName(sig))
			case <-done:
				return
			}
		}
	}()
	ok := true
	fail := func(what string, err error) {
		s.log.Error(what, "err", err)
		ok = false
	}

	// 1. The server: no more requests, the final event, then the sockets and the
	// authenticator.
	if s.pub != nil {
		s.publish("shutdown", []byte(reason))
	}
	if s.rep != nil || s.pub != nil {
		time.Sleep(socketLinger)
	}
	stopped := true // every connection and handshake has ended
	step := func(what string, f func() error) {
		if err := within(stepTimeout, f); err != nil {
			s.log.Warn(what, "err", err)
			stopped = stopped && !errors.Is(err, errStepTimeout)
		}
	}
	if s.rep != nil {
		step("closing the REP socket", s.rep.Close)
	}
	if s.pub != nil {
		step("closing the PUB socket", s.pub.Close)
	}
	if s.cancel != nil {
		s.cancel()
	}
	if s.auth != nil {
		step("stopping the authenticator", s.auth.Close)
	}
	if s.cfg != nil && stopped {
		s.cfg.KeyPair.Wipe()
	}

	// 2. Shutdown hooks (remote tidy).
	for _, h := range s.hooks {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		err := h.run(ctx)
		cancel()
		if err != nil {
			fail(h.name, err)
		}
	}

	// 3. The keys.
	if err := keystore.RemoveServerKeys(s.srvDir); err != nil {
		fail("removing the keys", err)
	}

	// 4. The contact file, last.
	if s.contactWritten {
		path := filepath.Join(s.srvDir, keystore.ContactFileName)
		if err := os.Remove(path); errors.Is(err, os.ErrNotExist) {
			s.log.Warn("contact file missing on shutdown", "path", path)
		} else if err != nil {
			fail("failed to remove workflow contact file", err)
		}
	}

	// 5. The lock.
	if err := s.lock.Unlock(); err != nil {
		fail("releasing the lock", err)
	}
	if ok {
		s.log.Info("scheduler stopped", "id", s.id, "reason", reason)
	} else {
		s.log.Error("scheduler stopped, some cleanup failed", "id", s.id, "reason", reason)
	}
	return ok
}

var errStepTimeout = errors.New("did not finish in time")

// within runs f and waits at most d for it; f keeps running in the background after a
// timeout (the process is about to exit).
func within(d time.Duration, f func() error) error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-ch:
		return err
	case <-t.C:
		return fmt.Errorf("%w (%v)", errStepTimeout, d)
	}
}
