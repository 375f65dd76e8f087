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
// "pong"), stop (replies, then shuts down), auth (the authenticator's Stats: counters,
// key count, generation, key directory), and for install targets (targets.go) add-target
// (args name, host), remove-target (name), targets and reload. Requests are handled one at a
// time and quickly: slow work (ssh, rsync) runs on goroutines of its own.
//
// Install targets given with --target start their remote-init and file install once the
// contact file exists (targets.go has the details).
//
// PUB publishes multipart [topic, payload] events: [b"command", {"command": C}] after each
// request that was carried out (so a subscriber can tell that its subscription is live),
// and [b"shutdown", reason] when the scheduler stops.
//
// Shutdown, on a stop request, SIGINT or SIGTERM, in Cylc's order: stop serving requests,
// publish the shutdown event, close REP and PUB and stop the authenticator; run the shutdown
// hooks (remote tidy of install targets); delete the keys; delete the
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
	"cmp"
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
	"unicode/utf8"

	"github.com/go-zeromq/zmq4"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/keystore"
	"github.com/curvezmq/curvezmq/rsyncx"
	"github.com/curvezmq/curvezmq/zap"
)

const schedulerUsage = `usage: curvezmq scheduler [--run-dir DIR] [--id ID] [--host HOST] [--ports MIN-MAX]
                          [--target NAME=HOST]... [--remote-command PATH] [--ssh COMMAND]
                          [--login-shell] [--install-binary DIR] [--init-timeout T]
                          [--install-timeout T] [--tidy-timeout T]

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

install targets (remote hosts that get the workflow's keys, as Cylc's platforms do):
  --target NAME=HOST     an install target reached by ssh at HOST (repeatable); at start,
                         remote-init then file install for each, and at shutdown remote
                         tidy; the target "localhost" skips every remote step
  --remote-command PATH  the program run on the remote hosts (default: curvezmq on the
                         remote PATH; a relative path starts from the remote home)
  --ssh COMMAND          the ssh command, replacing the default whole
                         (default: ssh -oBatchMode=yes -oConnectTimeout=10)
  --login-shell          run the remote command under bash --login
  --install-binary DIR   when the remote command is missing, copy the build for the remote
                         platform (DIR/curvezmq-<goos>-<goarch>, as scripts/release makes
                         them) to ~/.curvezmq/bin/curvezmq there and use it
  --init-timeout T       bounds remote-init and a binary install (default 120s)
  --install-timeout T    bounds a file install (default 120s)
  --tidy-timeout T       bounds remote tidy at shutdown (default 10s)
  (T: a Go duration such as 90s, or seconds)

requests (curvezmq client COMMAND [NAME=VALUE]...): ping, stop, auth, targets,
add-target name=NAME host=HOST, remove-target name=NAME, reload. Install target requests
reply at once; "targets" shows the statuses as they change.

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
	// peerSendTimeout drops a client that takes none of our data for that long: zmq4 writes
	// to every client from one goroutine, so one that stops reading would stall the replies
	// of all the others.
	peerSendTimeout = 2 * time.Second
	// maxRequestSize bounds a whole request (a request is a little JSON): zmq4 holds a
	// message whole before the scheduler can look at it.
	maxRequestSize = 1 << 20
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
// (Cylc's remote tidy). It gets timeout, or stepTimeout when that is zero.
type shutdownHook struct {
	name    string
	timeout time.Duration
	run     func(ctx context.Context) error
}

// targetSpec is one --target NAME=HOST.
type targetSpec struct{ name, host string }

// scheduler is one run of the scheduler. Requests are handled on one goroutine, so handlers
// need no locking among themselves.
type scheduler struct {
	id, runDir, srvDir string
	host               string
	listen             string // the address the sockets bind to: "*" (all interfaces) by default
	portMin, portMax   int
	getenv             func(string) string
	restart            bool // the run directory had a scheduler log before this start

	// Install targets: the flags, and the manager once started.
	targetSpecs   []targetSpec
	sshCommand    string
	remoteCommand string
	loginShell    bool
	topts         targetOptions
	newInstaller  func(name, host string) (installer, error) // nil: rsyncx.Remote
	targets       *targetManager

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

// newScheduler returns a scheduler with its request handlers and defaults.
func newScheduler(e *env) *scheduler {
	return &scheduler{
		handlers: map[string]requestHandler{
			"ping":          handlePing,
			"stop":          handleStop,
			"auth":          handleAuth,
			"targets":       handleTargets,
			"add-target":    handleAddTarget,
			"remove-target": handleRemoveTarget,
			"reload":        handleReload,
		},
		stopping: make(chan string, 1),
		getenv:   e.getenv,
		listen:   "*",
		topts: targetOptions{
			initTimeout:    defaultInitTimeout,
			installTimeout: defaultInstallTimeout,
			tidyTimeout:    defaultTidyTimeout,
		},
	}
}

func runScheduler(e *env, args []string) int {
	s, code, ok := parseScheduler(e, args)
	if !ok {
		return code
	}
	// Signals stay caught until the process exits: a second one during or just after the
	// cleanup must not cut it short or change the exit status.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	return s.run(e, sigs)
}

// parseScheduler reads the command line into a scheduler, or returns the exit code after
// reporting a usage error.
func parseScheduler(e *env, args []string) (*scheduler, int, bool) {
	s := newScheduler(e)
	fs := flag.NewFlagSet("scheduler", flag.ContinueOnError)
	runDirFlag := fs.String("run-dir", "", "")
	idFlag := fs.String("id", "", "")
	hostFlag := fs.String("host", "", "")
	portsFlag := fs.String("ports", fmt.Sprintf("%d-%d", defaultPortMin, defaultPortMax), "")
	fs.Func("target", "", func(v string) error {
		name, host, ok := strings.Cut(v, "=")
		if !ok {
			return fmt.Errorf("want NAME=HOST, got %q", v)
		}
		if err := rsyncx.ValidTarget(name); err != nil {
			return err
		}
		if err := rsyncx.ValidHost(host); err != nil {
			return err
		}
		for _, t := range s.targetSpecs {
			if t.name == name {
				return fmt.Errorf("install target %q given twice", name)
			}
		}
		s.targetSpecs = append(s.targetSpecs, targetSpec{name, host})
		return nil
	})
	fs.StringVar(&s.remoteCommand, "remote-command", "", "")
	fs.StringVar(&s.sshCommand, "ssh", "", "")
	fs.BoolVar(&s.loginShell, "login-shell", false, "")
	fs.StringVar(&s.topts.installBinary, "install-binary", "", "")
	for name, d := range map[string]*time.Duration{
		"init-timeout":    &s.topts.initTimeout,
		"install-timeout": &s.topts.installTimeout,
		"tidy-timeout":    &s.topts.tidyTimeout,
	} {
		fs.Func(name, "", func(v string) error {
			t, err := parseTimeout(v)
			if err != nil {
				return errors.New(strings.TrimPrefix(err.Error(), "--timeout "))
			}
			*d = t
			return nil
		})
	}
	if code, ok := parseFlags(e, fs, schedulerUsage, args); !ok {
		return nil, code, false
	}
	bad := func(format string, a ...any) (*scheduler, int, bool) {
		return nil, usageError(e, "scheduler", schedulerUsage, format, a...), false
	}
	if fs.NArg() != 0 {
		return bad("unexpected arguments %q", fs.Args())
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
	if d := s.topts.installBinary; d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return bad("--install-binary %q: %v", d, err)
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return bad("--install-binary %q: not a directory", d)
		}
		s.topts.installBinary = abs
	}
	// The ssh and remote commands, hosts and the workflow id are checked now, with the command
	// lines they make, rather than when the first target starts.
	for _, t := range s.targetSpecs {
		if _, err := s.remoteInstaller(t.name, t.host); err != nil {
			return bad("--target %s=%s: %v", t.name, t.host, err)
		}
	}
	if len(s.targetSpecs) == 0 && (s.sshCommand != "" || s.remoteCommand != "") {
		if _, err := s.remoteInstaller("check", "localhost"); err != nil {
			return bad("%v", err)
		}
	}
	return s, 0, true
}

// remoteInstaller makes the installer of a target reached over ssh and checks its command
// lines.
func (s *scheduler) remoteInstaller(name, host string) (installer, error) {
	r := &rsyncx.Remote{Host: host, Target: name, SSHCommand: s.sshCommand, RemoteCommand: s.remoteCommand, LoginShell: s.loginShell}
	if rsyncx.IsLocal(name) {
		return r, nil
	}
	if _, err := r.InitArgv(s.id); err != nil {
		return nil, err
	}
	if _, err := r.InstallArgv(s.runDir, s.id); err != nil {
		return nil, err
	}
	return r, nil
}

// run runs the scheduler until a stop request or a signal on sigs, and returns the exit
// code.
func (s *scheduler) run(e *env, sigs <-chan os.Signal) int {
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
	path := filepath.Join(dir, "log")
	if _, err := os.Lstat(path); err == nil {
		s.restart = true // a scheduler ran here before: a restart, in Cylc's terms
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
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
	s.log.Info("scheduler starting", "id", s.id, "run_dir", s.runDir, "pid", os.Getpid(), "version", version, "restart", s.restart)
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
		SendTimeout:       peerSendTimeout,
		MaxMessageSize:    maxRequestSize,
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
	if err := s.writeContact(); err != nil {
		return err
	}
	s.startTargets()
	return nil
}

// startTargets makes the install target manager and, the contact file being written, starts
// remote-init for each --target.
func (s *scheduler) startTargets() {
	newInstaller := s.newInstaller
	if newInstaller == nil {
		newInstaller = s.remoteInstaller
	}
	s.targets = &targetManager{
		id: s.id, runDir: s.runDir, srvDir: s.srvDir, log: s.log,
		reload: s.auth.Reload, newInstaller: newInstaller, opts: s.topts,
		targets: map[string]*target{},
	}
	s.hooks = append(s.hooks, shutdownHook{
		name:    "remote tidy",
		timeout: stepStopWait + s.topts.tidyTimeout + time.Second,
		run:     s.targets.shutdown,
	})
	load := rsyncx.LoadStart
	if s.restart {
		load = rsyncx.LoadRestart
	}
	for _, t := range s.targetSpecs {
		if _, err := s.targets.add(t.name, t.host, load); err != nil {
			s.log.Error("install target", "target", t.name, "host", t.host, "err", err)
		}
	}
}

// bind listens on a port of the range on s.listen (all interfaces by default) and returns
// the port.
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
		if err = sock.Listen(fmt.Sprintf("%s://%s:%d", curve.TransportTCP, s.listen, p)); err == nil {
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
		keystore.ContactSSHCommand:  cmp.Or(s.sshCommand, rsyncx.DefaultSSHCommand),
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
//
// zmq4's REP socket sends a reply to the connection of its latest Recv, so each Recv
// waits until the previous request has been answered: receiving ahead would send that
// answer to the next request's client.
func (s *scheduler) serve(sigs <-chan os.Signal) string {
	msgs := make(chan zmq4.Msg)
	replied := make(chan struct{}, 1)
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
			select {
			case <-replied:
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
			replied <- struct{}{}
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

// clip shortens s to at most n bytes, on a character boundary, marking the cut with
// "...": a reply never echoes more of a request than that.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
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
		return nil, fmt.Errorf("unknown command %q (known: %s)", clip(req.Command, 64), strings.Join(slices.Sorted(maps.Keys(s.handlers)), ", "))
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
		ctx, cancel := context.WithTimeout(context.Background(), cmp.Or(h.timeout, stepTimeout))
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
