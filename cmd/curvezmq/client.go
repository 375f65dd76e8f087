package main

// The client: what a Cylc command line tool or a job does to talk to a running scheduler.
//
// The run directory is --run-dir, else --id's $HOME/curvezmq-run/<id>, else
// $CURVEZMQ_RUN_DIR (set for a workflow's own jobs), in that order. An explicit --id wins
// over the environment so that a job of workflow A naming workflow B never talks to B
// with A's files (Cylc uses CYLC_WORKFLOW_RUN_DIR only when the id asked for is the job's
// own; cylc-flow #1843).
//
// From .service the client reads, as Cylc's WorkflowRuntimeClient does, the contact file
// (CYLC_WORKFLOW_HOST and CYLC_WORKFLOW_PORT), client.key_secret (both halves of its key
// pair) and server.key. It sends one request as a REQ socket would (an empty delimiter
// frame, then the JSON) over a plain curve.Conn, which reports why a handshake failed where
// a zmq4 or libzmq socket only stays silent. --timeout bounds connecting, the handshake,
// sending and receiving together.
//
// When there is no reply (a timeout, a refused or broken connection), the client does
// what Cylc's timeout handler does: it reads the contact file again (a moved scheduler is
// reported as such) and checks whether the scheduler's process is alive
// (keystore.DetectOldContact: same PID, same command line). A dead scheduler means "not
// running" (exit 4) and, as in Cylc, its stale contact file is removed, so the next client
// and the next scheduler see at once that nothing runs. The file is removed only when the
// PID and command it names no longer match a process; a scheduler replacing it in the
// instant between that check and the removal would lose its new file, a window Cylc's
// client has too. A live scheduler, or one on another host (which cannot be checked),
// means exit 2.
//
// Exit codes: 0 the reply's data is printed on stdout as indented JSON; 1 the reply was an
// error (its message is printed on stderr), the reply was not Cylc's JSON, or bad usage;
// 2 no reply in time, or the scheduler could not be reached although it may be running;
// 3 the server refused the handshake (ERROR 400: this client's key is not allowed; ERROR
// 500: the authenticator failed) or closed the connection right after HELLO, which is what
// libzmq does when the client's server key is wrong (a Cylc client only ever sees a
// timeout in both cases); 4 the workflow is not running (no contact file) or a key file is
// missing, with Cylc's messages.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/curvezmq/curvezmq/curve"
	"github.com/curvezmq/curvezmq/keystore"
)

const clientUsage = `usage: curvezmq client [--run-dir DIR | --id ID] [--timeout T] [--raw JSON] COMMAND [NAME=VALUE]...

Sends one request to a running scheduler, Cylc's way: {"command": COMMAND, "args": {NAME:
VALUE, ...}, "meta": {...}}, values as strings, over CURVE with the keys of DIR/.service.
Prints the reply's data as JSON on standard output. Commands of "curvezmq scheduler": ping,
stop, auth, targets, add-target (name=NAME host=HOST), remove-target (name=NAME), reload.

flags:
  --run-dir DIR  the run directory (default: $HOME/curvezmq-run/ID with --id, else
                 $CURVEZMQ_RUN_DIR)
  --id ID        the workflow id
  --timeout T    bounds connecting, the handshake, sending and receiving together: a Go
                 duration (1m30s, 500ms) or seconds (2.5); default 5s
  --raw JSON     send JSON as the whole request instead of COMMAND and NAME=VALUE pairs

Exit status: 0 success; 1 an error reply or bad usage; 2 no reply in time; 3 refused by
the server; 4 the workflow is not running or its key files are missing.
`

const defaultClientTimeout = 5 * time.Second

func init() {
	register("client", command{
		summary: "send a request to a running scheduler and print the reply",
		run:     runClient,
	})
}

// client is one run of the client command.
type client struct {
	e        *env
	id       string
	runDir   string
	srvDir   string
	timeout  time.Duration
	deadline time.Time
	host     string
	port     int
}

func runClient(e *env, args []string) int {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	runDirFlag := fs.String("run-dir", "", "")
	idFlag := fs.String("id", "", "")
	timeoutFlag := fs.String("timeout", "", "")
	rawFlag := fs.String("raw", "", "")
	if code, ok := parseFlags(e, fs, clientUsage, args); !ok {
		return code
	}
	bad := func(format string, a ...any) int { return usageError(e, "client", clientUsage, format, a...) }
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	cl := &client{e: e, timeout: defaultClientTimeout}
	if set["timeout"] {
		d, err := parseTimeout(*timeoutFlag)
		if err != nil {
			return bad("%v", err)
		}
		cl.timeout = d
	}
	var err error
	switch {
	case set["run-dir"] && set["id"]:
		return bad("give --run-dir or --id, not both")
	case set["run-dir"]:
		cl.runDir, err = absRunDir(*runDirFlag)
	case set["id"]:
		if err = checkID(*idFlag); err == nil {
			cl.id = *idFlag
			cl.runDir, err = defaultRunDir(e.getenv("HOME"), cl.id)
		}
	case e.getenv(runDirEnv) != "":
		cl.runDir, err = absRunDir(e.getenv(runDirEnv))
	default:
		return bad("which workflow? Give --run-dir or --id, or set %s", runDirEnv)
	}
	if err != nil {
		return bad("%v", err)
	}
	if cl.id == "" {
		cl.id = filepath.Base(cl.runDir)
	}
	cl.srvDir = keystore.ServiceDir(cl.runDir)

	var body []byte
	if set["raw"] {
		if fs.NArg() != 0 {
			return bad("--raw is the whole request: no COMMAND or NAME=VALUE")
		}
		if !json.Valid([]byte(*rawFlag)) {
			return bad("--raw: not valid JSON")
		}
		body = []byte(*rawFlag)
	} else {
		if fs.NArg() == 0 {
			return bad("no COMMAND")
		}
		if body, err = buildRequest(fs.Arg(0), fs.Args()[1:]); err != nil {
			return bad("%v", err)
		}
	}
	return cl.run(body)
}

// parseTimeout reads a Go duration or a number of seconds; it must be positive.
func parseTimeout(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return 0, fmt.Errorf("--timeout %q: want a duration (5s, 500ms) or seconds (2.5)", v)
		}
		if secs > 0 && secs < float64(1<<62)/float64(time.Second) {
			d = time.Duration(secs * float64(time.Second))
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("--timeout %q: must be positive", v)
	}
	return d, nil
}

// buildRequest makes Cylc's request for command with NAME=VALUE arguments.
func buildRequest(command string, pairs []string) ([]byte, error) {
	args := map[string]string{}
	for _, p := range pairs {
		name, value, ok := strings.Cut(p, "=")
		switch {
		case !ok || name == "":
			return nil, fmt.Errorf("argument %q: want NAME=VALUE", p)
		case hasKey(args, name):
			return nil, fmt.Errorf("argument %q given twice", name)
		}
		args[name] = value
	}
	host, _ := os.Hostname()
	return json.Marshal(map[string]any{
		"command": command,
		"args":    args,
		"meta":    map[string]string{"prog": "curvezmq client", "host": host, "comms_method": "zmq"},
	})
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

func (cl *client) fail(code int, format string, a ...any) int {
	fmt.Fprintf(cl.e.stderr, "curvezmq: client: "+format+"\n", a...)
	return code
}

func (cl *client) run(body []byte) int {
	cl.deadline = time.Now().Add(cl.timeout)
	contact, err := keystore.ReadContact(cl.srvDir)
	switch {
	case errors.Is(err, keystore.ErrNoContact):
		return cl.fail(exitNotRunning, "%s is not running\n(no contact file: %v)", cl.id, err)
	case err != nil:
		return cl.fail(exitNotRunning, "%s: cannot read its contact file: %v", cl.id, err)
	}
	if id := contact[keystore.ContactID]; id != "" {
		cl.id = id
	}
	host, port, err := contact.HostPort()
	if err != nil {
		return cl.fail(exitNotRunning, "%s: unusable contact file: %v", cl.id, err)
	}
	cl.host, cl.port = host, port

	kp, serverKey, err := keystore.LoadClientKeysWarn(cl.srvDir, func(format string, a ...any) {
		fmt.Fprintf(cl.e.stderr, "curvezmq: client: warning: "+format+"\n", a...)
	})
	switch {
	case errors.Is(err, keystore.ErrNoClientKey):
		return cl.fail(exitNotRunning, "%s\n(%v)", keystore.MsgNoClientKey, err)
	case errors.Is(err, keystore.ErrNoServerKey):
		return cl.fail(exitNotRunning, "%s\n(%v)", keystore.MsgNoServerKey, err)
	case err != nil:
		return cl.fail(exitNotRunning, "%v", err)
	}
	cfg := &curve.Config{KeyPair: kp, ServerKey: serverKey, SocketType: "REQ"}
	reply, err := cl.exchange(cfg, body)
	cfg.KeyPair.Wipe()
	kp.Wipe()
	if err != nil {
		return cl.noReply(err)
	}
	return cl.printReply(reply)
}

// exchange sends body as a REQ socket would and returns the reply's content.
func (cl *client) exchange(cfg *curve.Config, body []byte) ([]byte, error) {
	ctx, cancel := context.WithDeadline(context.Background(), cl.deadline)
	defer cancel()
	conn, err := curve.Dial(ctx, "tcp", net.JoinHostPort(cl.host, strconv.Itoa(cl.port)), cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(cl.deadline); err != nil {
		return nil, err
	}
	if err := conn.Send([]byte{}, body); err != nil {
		return nil, err
	}
	msg, err := conn.Recv(nil)
	if err != nil {
		return nil, err
	}
	// A REP socket answers with the envelope it was sent: the empty delimiter, then the reply.
	if len(msg) != 2 || len(msg[0]) != 0 {
		return nil, fmt.Errorf("%w: a reply of %d frames, not the delimiter and one frame", errBadReply, len(msg))
	}
	return msg[1], nil
}

var errBadReply = errors.New("malformed reply")

// printReply prints {"data": ...} and returns 0, or reports {"error": ...} and returns 1.
func (cl *client) printReply(reply []byte) int {
	var r map[string]json.RawMessage
	if err := json.Unmarshal(reply, &r); err != nil {
		return cl.fail(exitFailed, "%s: %v: %v", cl.id, errBadReply, err)
	}
	if raw, ok := r["error"]; ok {
		var e struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(raw, &e); err != nil || e.Message == "" {
			return cl.fail(exitFailed, "%s: error reply: %s", cl.id, raw)
		}
		return cl.fail(exitFailed, "%s: %s", cl.id, e.Message)
	}
	data, ok := r["data"]
	if !ok {
		return cl.fail(exitFailed, "%s: %v: neither data nor error", cl.id, errBadReply)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, data, "", "    "); err != nil {
		return cl.fail(exitFailed, "%s: %v: %v", cl.id, errBadReply, err)
	}
	out.WriteByte('\n')
	cl.e.stdout.Write(out.Bytes())
	return exitOK
}

// noReply explains a failed exchange and returns the exit code.
func (cl *client) noReply(err error) int {
	where := fmt.Sprintf("%s %s", cl.id, net.JoinHostPort(cl.host, strconv.Itoa(cl.port)))
	var ae *curve.AuthError
	switch {
	case errors.As(err, &ae):
		switch ae.Status {
		case curve.StatusDenied:
			return cl.fail(exitRefused, "%s: refused by the server (ERROR 400): this client's key is not in the scheduler's %s", where, keystore.ClientPublicKeysDirName)
		case curve.StatusInternalError:
			return cl.fail(exitRefused, "%s: refused by the server (ERROR 500): the scheduler's authenticator failed", where)
		case 0:
			return cl.fail(exitRefused, "%s: refused by the server (ERROR %q)", where, ae.Reason)
		default:
			return cl.fail(exitRefused, "%s: refused by the server (ERROR %d)", where, ae.Status)
		}
	case errors.Is(err, errBadReply):
		return cl.fail(exitFailed, "%s: %v", where, err)
	}

	// No reply, or a hang-up after HELLO: has the scheduler moved, stopped or died? (Its
	// port may now be another scheduler's, which hangs up on a key not its own.)
	var what string
	stillRunning := exitTimeout
	switch {
	case errors.Is(err, curve.ErrNoWelcome):
		what = fmt.Sprintf("%s: the server closed the connection right after HELLO: wrong server key? (%s may be from another run of the scheduler)", where, filepath.Join(cl.srvDir, keystore.ServerPublicKeyFile))
		stillRunning = exitRefused
	case isTimeout(err):
		what = fmt.Sprintf("%s: Connection timed out (%d ms)\nTimeout waiting for server response.", where, cl.timeout.Milliseconds())
	case errors.Is(err, syscall.ECONNREFUSED):
		what = fmt.Sprintf("%s: connection refused", where)
	default:
		what = fmt.Sprintf("%s: no reply: %v", where, err)
	}
	contact, cerr := keystore.ReadContact(cl.srvDir)
	if errors.Is(cerr, keystore.ErrNoContact) {
		return cl.fail(exitNotRunning, "%s\n%s is not running (its contact file is gone)", what, cl.id)
	}
	if cerr == nil {
		if h, p, err := contact.HostPort(); err == nil && (h != cl.host || p != cl.port) {
			return cl.fail(exitTimeout, "%s\nThe workflow is no longer running at %s\nIt has moved to %s",
				what, net.JoinHostPort(cl.host, strconv.Itoa(cl.port)), net.JoinHostPort(h, strconv.Itoa(p)))
		}
	}
	var (
		alive *keystore.AliveError
		notes strings.Builder
	)
	derr := keystore.DetectOldContact(cl.srvDir, func(format string, a ...any) {
		fmt.Fprintf(&notes, "\n"+format, a...)
	})
	switch {
	case derr == nil:
		return cl.fail(exitNotRunning, "%s%s\n%s is not running", what, notes.String(), cl.id)
	case errors.As(derr, &alive):
		return cl.fail(stillRunning, "%s", what)
	default:
		return cl.fail(stillRunning, "%s\n(cannot tell if it is running: %v)", what, derr)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}
