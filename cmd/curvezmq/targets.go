package main

// Install targets on the scheduler: Cylc's remote-init, file install and remote tidy, one
// state machine per target.
//
// A target runs its steps on a goroutine of its own, never on the request loop:
//
//	REMOTE INIT IN PROGRESS -> REMOTE INIT DONE | REMOTE INIT FAILED | REMOTE INIT 255
//	REMOTE INIT DONE -> REMOTE FILE INSTALL IN PROGRESS
//	  -> REMOTE FILE INSTALL DONE | REMOTE FILE INSTALL FAILED | REMOTE FILE INSTALL 255
//
// Remote-init starts only once the contact file exists (its tar stream carries
// .service/contact; Cylc PR #3701). Its output is checked as Cylc checks it (exit 0 and
// KEYSTART), then the text between KEYSTART and KEYEND must parse as a public certificate:
// one carrying a secret key is refused and never written. It is saved as
// client_public_keys/client_<target>.key and the authenticator reloads before the file
// install starts, so the target's jobs are allowed by the time they could run. A FAILED or
// 255 status is final until a reload or a new add-target: we have one host per target, so
// there is no other host to retry on.
//
// When remote-init exits 127 (the remote shell found no such program) and --install-binary
// names a builds directory, the matching build is put on the host
// (rsyncx.Remote.InstallBinary, to ~/.curvezmq/bin/curvezmq) and remote-init runs again
// with it; later steps of that target use it too.
//
// Install log labels: targets given at start get "start", or "restart" when the run
// directory had a scheduler log before this start (Cylc makes new server keys on a restart,
// so the remotes need them again); every target re-installed by a reload gets "reload";
// add-target gets "start". (Cylc applies "restart" and "reload" to the first log written
// after them only, an accident of its one-shot flags.)
//
// Requests reply at once with the statuses of that moment; clients poll "targets":
//   - add-target: the new target, REMOTE INIT IN PROGRESS (REMOTE FILE INSTALL DONE for
//     localhost, which skips every remote step);
//   - remove-target: its client key is removed and the authenticator reloaded before the
//     reply, which closes the target's live connections; its running steps are canceled; a
//     remote tidy follows in the background, and the target leaves "targets" once it is
//     done (until then it is listed with "removing": true);
//   - reload: as Cylc's reload: the server keys stay; remote-init (a new client key pair on
//     the remote, replacing the old one here, whose connections are then closed) and file
//     install again for every target;
//   - targets: {"<name>": {"host": ..., "status": ..., "error": ...}}.
//
// Shutdown (a hook between closing the sockets and deleting the keys): running steps are
// canceled, then remote tidy runs for every target whose remote-init succeeded at some
// point (so the remote holds keys), in parallel, within the tidy timeout. Cylc tidies only
// targets in REMOTE FILE INSTALL DONE; a failed file install leaves keys on the remote too,
// so we tidy those as well. A failed remote-init is never tidied: its guard may have refused
// because the "remote" run directory is this scheduler's own. Failures are logged and make
// the shutdown report a failed step.
//
// Every subprocess has a deadline (remote-init, file install and the binary install: 120 s
// by default; remote tidy 10 s) and its whole process group is killed when it passes or the
// step is canceled (rsyncx.Run).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/curvezmq/curvezmq/keystore"
	"github.com/curvezmq/curvezmq/rsyncx"
)

const (
	defaultInitTimeout    = 120 * time.Second
	defaultInstallTimeout = 120 * time.Second
	defaultTidyTimeout    = 10 * time.Second
	// stepStopWait bounds the wait for a target's canceled steps: rsyncx.Run kills a
	// canceled command's process group and returns within its WaitDelay.
	stepStopWait = 5 * time.Second
)

// installer carries out the remote steps of one install target: *rsyncx.Remote over ssh
// and rsync, *rsyncx.Loopback on this machine (the demo).
type installer interface {
	Init(ctx context.Context, workflowID string, stdin io.Reader) (*rsyncx.InitResult, error)
	Install(ctx context.Context, runDir, workflowID string, load rsyncx.LoadType) (*rsyncx.InstallResult, error)
	Tidy(ctx context.Context, workflowID string) error
}

// targetOptions are the scheduler's settings for its install targets.
type targetOptions struct {
	installBinary                            string // a builds directory, or "" for never
	initTimeout, installTimeout, tidyTimeout time.Duration
}

// targetManager keeps the install targets of one scheduler.
type targetManager struct {
	id, runDir, srvDir string
	log                *slog.Logger
	// reload makes the authenticator's new allow-list live (zap.Authenticator.Reload).
	reload func() error
	// newInstaller makes and checks the installer of a target.
	newInstaller func(name, host string) (installer, error)
	opts         targetOptions

	mu      sync.Mutex
	targets map[string]*target
	closed  bool
	removal sync.WaitGroup // background remote tidies of removed targets
}

// target is one install target; its fields are guarded by the manager's mutex, except inst,
// which only the goroutine running the target's steps uses (removal and shutdown wait for it).
type target struct {
	name, host string
	inst       installer
	status     rsyncx.Status
	err        string
	// initOK says that a remote-init succeeded: the remote holds keys until a remote tidy.
	initOK   bool
	removing bool
	gen      int                // which run of the steps is current
	cancel   context.CancelFunc // cancels the current run
	done     chan struct{}      // closed when the current run has ended
}

// targetView is what requests show of a target.
type targetView struct {
	Host     string        `json:"host"`
	Status   rsyncx.Status `json:"status"`
	Error    string        `json:"error,omitempty"`
	Removing bool          `json:"removing,omitempty"`
}

func (t *target) view() targetView {
	return targetView{Host: t.host, Status: t.status, Error: t.err, Removing: t.removing}
}

var (
	errTargetExists   = errors.New("install target exists")
	errNoSuchTarget   = errors.New("no such install target")
	errShuttingDown   = errors.New("the scheduler is shutting down")
	errTargetRemoving = errors.New("install target is being removed")
)

// add registers a target and starts its steps; load labels its install log.
func (m *targetManager) add(name, host string, load rsyncx.LoadType) (targetView, error) {
	if err := rsyncx.ValidTarget(name); err != nil {
		return targetView{}, err
	}
	if err := rsyncx.ValidHost(host); err != nil {
		return targetView{}, err
	}
	inst, err := m.newInstaller(name, host)
	if err != nil {
		return targetView{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch t, ok := m.targets[name]; {
	case m.closed:
		return targetView{}, errShuttingDown
	case ok && t.removing:
		return targetView{}, fmt.Errorf("%w: %s (try again once it has left \"targets\")", errTargetRemoving, name)
	case ok:
		return targetView{}, fmt.Errorf("%w: %s (remove-target it first, or reload)", errTargetExists, name)
	}
	t := &target{name: name, host: host, inst: inst}
	m.targets[name] = t
	m.run(t, load)
	return t.view(), nil
}

// run starts a new run of t's steps, after the previous one (canceled here) has ended.
// The caller holds m.mu.
func (m *targetManager) run(t *target, load rsyncx.LoadType) {
	if t.cancel != nil {
		t.cancel()
	}
	t.gen++
	ctx, cancel := context.WithCancel(context.Background())
	prev, done, gen := t.done, make(chan struct{}), t.gen
	t.cancel, t.done = cancel, done
	t.status, t.err = rsyncx.StatusInitInProgress, ""
	if rsyncx.IsLocal(t.name) {
		// Nothing to run, as in Cylc: "REMOTE INIT NOT REQUIRED".
		t.status = rsyncx.StatusInstallDone
		close(done)
		return
	}
	go func() {
		defer close(done)
		defer cancel()
		if prev != nil {
			<-prev
		}
		m.steps(ctx, t, gen, load)
	}()
}

// update applies f to t if run gen is still current, and reports whether it was.
func (m *targetManager) update(t *target, gen int, f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.gen != gen || t.removing || m.closed {
		return false
	}
	f()
	return true
}

// steps runs remote-init, then the file install.
func (m *targetManager) steps(ctx context.Context, t *target, gen int, load rsyncx.LoadType) {
	log := m.log.With("target", t.name, "host", t.host)
	fail := func(status rsyncx.Status, what string, err error) {
		if m.update(t, gen, func() { t.status, t.err = status, err.Error() }) {
			log.Error(what, "status", string(status), "err", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return
	}
	if !m.update(t, gen, func() { t.status = rsyncx.StatusInitInProgress }) {
		return
	}
	log.Info("remote init")
	res, err := m.remoteInit(ctx, t, log)
	if err != nil {
		fail(res.Status, "remote init failed", timeoutSays(err, "--init-timeout", m.opts.initTimeout))
		return
	}
	// The remote made keys, whatever happens next here.
	m.mu.Lock()
	t.initOK = true
	m.mu.Unlock()

	// Only a public certificate is written; Cylc would write whatever came back.
	cert, perr := keystore.ParseCertificate("remote-init output", res.Cert)
	if perr == nil && cert.HasSecret {
		perr = fmt.Errorf("remote init of target %s on %s: the certificate carries a secret key: refused, nothing written (%w)",
			t.name, t.host, keystore.ErrHasSecret)
	}
	short := ""
	if cert != nil {
		short = cert.Public.Short()
		cert.Wipe()
	}
	if perr == nil {
		perr = m.installKey(ctx, t, gen, res.Cert)
	}
	clear(res.Cert)
	if res.Result != nil {
		clear(res.Result.Stdout)
	}
	if errors.Is(perr, context.Canceled) {
		return
	}
	if perr != nil {
		fail(rsyncx.StatusInitFailed, "remote init failed", perr)
		return
	}
	if err := m.reload(); err != nil {
		log.Warn("reloading the authenticator", "err", err)
	}
	if !m.update(t, gen, func() { t.status = rsyncx.StatusInitDone }) {
		return
	}
	log.Info("remote init done", "client_key", short)

	if !m.update(t, gen, func() { t.status = rsyncx.StatusInstallInProgress }) {
		return
	}
	log.Info("remote file install", "load", string(load))
	ictx, cancel := context.WithTimeout(ctx, m.opts.installTimeout)
	xr, err := t.inst.Install(ictx, m.runDir, m.id, load)
	cancel()
	if xr.LogErr != nil {
		log.Warn("writing the install log", "err", xr.LogErr)
	}
	if err != nil {
		fail(xr.Status, "remote file install failed", timeoutSays(err, "--install-timeout", m.opts.installTimeout))
		return
	}
	if m.update(t, gen, func() { t.status = rsyncx.StatusInstallDone }) {
		log.Info("remote file install complete", "install_log", xr.LogPath)
	}
}

// remoteInit runs remote-init with the contact file on its stdin; when the remote program is
// missing and a builds directory is set, it installs the binary and tries again.
func (m *targetManager) remoteInit(ctx context.Context, t *target, log *slog.Logger) (*rsyncx.InitResult, error) {
	once := func() (*rsyncx.InitResult, error) {
		var stream bytes.Buffer
		if err := rsyncx.WriteContactTar(&stream, m.srvDir); err != nil {
			return &rsyncx.InitResult{Status: rsyncx.StatusInitFailed}, err
		}
		ictx, cancel := context.WithTimeout(ctx, m.opts.initTimeout)
		defer cancel()
		return t.inst.Init(ictx, m.id, &stream)
	}
	res, err := once()
	var xe *rsyncx.ExitError
	r, isRemote := t.inst.(*rsyncx.Remote)
	if err == nil || m.opts.installBinary == "" || !isRemote || !errors.As(err, &xe) || xe.Code != 127 ||
		r.RemoteCommand == rsyncx.BinaryPath {
		return res, err
	}
	log.Info("the remote command is missing; installing the binary", "err", err, "builds", m.opts.installBinary)
	bctx, cancel := context.WithTimeout(ctx, m.opts.initTimeout)
	br, berr := r.InstallBinary(bctx, m.opts.installBinary)
	cancel()
	if berr != nil {
		var re *rsyncx.Error
		status := rsyncx.StatusInitFailed
		if errors.As(berr, &re) {
			status = re.Status
		}
		return &rsyncx.InitResult{Status: status}, berr
	}
	log.Info("binary installed", "path", "~/"+rsyncx.BinaryPath, "platform", br.GOOS+"/"+br.GOARCH, "version", br.Version)
	r.RemoteCommand = rsyncx.BinaryPath
	return once()
}

// installKey saves the target's certificate in client_public_keys, unless the run was
// canceled: the check and the write happen under the lock that remove-target takes to cancel,
// so a removed target's key never comes back.
func (m *targetManager) installKey(ctx context.Context, t *target, gen int, cert []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ctx.Err() != nil || t.gen != gen || t.removing || m.closed {
		return context.Canceled
	}
	return keystore.InstallClientKey(m.srvDir, t.name, cert)
}

// remove revokes a target at once (its key file goes and the authenticator reloads, which
// closes its connections) and tidies its remote in the background.
func (m *targetManager) remove(name string) (targetView, error) {
	m.mu.Lock()
	t, ok := m.targets[name]
	switch {
	case m.closed:
		m.mu.Unlock()
		return targetView{}, errShuttingDown
	case !ok:
		m.mu.Unlock()
		return targetView{}, fmt.Errorf("%w: %q", errNoSuchTarget, name)
	case t.removing:
		m.mu.Unlock()
		return targetView{}, fmt.Errorf("%w: %s", errTargetRemoving, name)
	}
	t.removing = true
	t.cancel()
	done := t.done
	v := t.view()
	m.removal.Add(1)
	m.mu.Unlock()

	log := m.log.With("target", name, "host", t.host)
	var err error
	if !rsyncx.IsLocal(name) {
		if err = keystore.RemoveClientKey(m.srvDir, name); err != nil {
			log.Error("removing the target's client key", "err", err)
		} else if rerr := m.reload(); rerr != nil {
			log.Warn("reloading the authenticator", "err", rerr)
		}
	}
	log.Info("install target removed; its key is revoked")
	go func() {
		defer m.removal.Done()
		<-done
		m.mu.Lock()
		tidy := t.initOK
		m.mu.Unlock()
		if tidy {
			m.tidy(t)
		}
		m.mu.Lock()
		if m.targets[name] == t {
			delete(m.targets, name)
		}
		m.mu.Unlock()
	}()
	if err != nil {
		return v, fmt.Errorf("removing the client key of %s: %w", name, err)
	}
	return v, nil
}

// tidy runs remote tidy for t within the tidy timeout; t's steps have ended.
func (m *targetManager) tidy(t *target) error {
	log := m.log.With("target", t.name, "host", t.host)
	log.Info("remote tidy")
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.tidyTimeout)
	defer cancel()
	if err := t.inst.Tidy(ctx, m.id); err != nil {
		err = timeoutSays(err, "--tidy-timeout", m.opts.tidyTimeout)
		log.Error("remote tidy failed: clean up did not complete", "err", err)
		return err
	}
	m.mu.Lock()
	t.initOK = false
	m.mu.Unlock()
	log.Info("remote tidy done")
	return nil
}

// reloadAll runs remote-init and the file install again for every target (load "reload").
func (m *targetManager) reloadAll() (map[string]targetView, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errShuttingDown
	}
	views := map[string]targetView{}
	for _, name := range slices.Sorted(maps.Keys(m.targets)) {
		t := m.targets[name]
		if !t.removing {
			m.run(t, rsyncx.LoadReload)
		}
		views[name] = t.view()
	}
	m.log.Info("reload: remote init and file install again", "targets", len(views))
	return views, nil
}

// list returns every target's view.
func (m *targetManager) list() map[string]targetView {
	m.mu.Lock()
	defer m.mu.Unlock()
	views := make(map[string]targetView, len(m.targets))
	for name, t := range m.targets {
		views[name] = t.view()
	}
	return views
}

// shutdown cancels every target's steps and tidies the remotes that hold keys, in parallel.
// ctx bounds the whole.
func (m *targetManager) shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	var all []*target
	for _, t := range m.targets {
		if !t.removing {
			all = append(all, t)
			t.cancel()
		}
	}
	m.mu.Unlock()

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	deadline := time.Now().Add(stepStopWait)
	for _, t := range all {
		wait := time.NewTimer(time.Until(deadline))
		select {
		case <-t.done:
		case <-wait.C:
		case <-ctx.Done():
		}
		wait.Stop()
		select {
		case <-t.done:
		default:
			m.log.Error("remote tidy skipped: the target's steps did not end in time", "target", t.name)
			mu.Lock() // tidies started for earlier targets append too
			errs = append(errs, fmt.Errorf("target %s: steps still running", t.name))
			mu.Unlock()
			continue
		}
		m.mu.Lock()
		tidy := t.initOK
		m.mu.Unlock()
		if !tidy {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.tidy(t); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	removals := make(chan struct{})
	go func() { m.removal.Wait(); close(removals) }()
	select {
	case <-removals:
	case <-ctx.Done():
		errs = append(errs, errors.New("remote tidy of removed targets still running"))
	}
	return errors.Join(errs...)
}

// timeoutSays adds the limit to a timeout's error.
func timeoutSays(err error, flag string, d time.Duration) error {
	if errors.Is(err, rsyncx.ErrTimeout) {
		return fmt.Errorf("%w (%s %v)", err, flag, d)
	}
	return err
}

// stringArgs reads a request's args, which must be exactly the names given, each a string.
func stringArgs(req *request, names ...string) (map[string]string, error) {
	raw := map[string]json.RawMessage{}
	if len(req.Args) > 0 && string(req.Args) != "null" {
		if err := json.Unmarshal(req.Args, &raw); err != nil {
			return nil, fmt.Errorf("malformed request: %v", err)
		}
	}
	out := map[string]string{}
	for _, n := range names {
		v, ok := raw[n]
		if !ok {
			return nil, fmt.Errorf("%s: missing argument %q", req.Command, n)
		}
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return nil, fmt.Errorf("%s: argument %q must be a string", req.Command, n)
		}
		out[n] = str
	}
	for n := range raw {
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("%s: unknown argument %q", req.Command, n)
		}
	}
	return out, nil
}

func handleTargets(s *scheduler, req *request) (any, error) {
	if _, err := stringArgs(req); err != nil {
		return nil, err
	}
	return s.targets.list(), nil
}

func handleAddTarget(s *scheduler, req *request) (any, error) {
	a, err := stringArgs(req, "name", "host")
	if err != nil {
		return nil, err
	}
	v, err := s.targets.add(a["name"], a["host"], rsyncx.LoadStart)
	if err != nil {
		return nil, err
	}
	s.log.Info("install target added", "target", a["name"], "host", a["host"])
	return map[string]targetView{a["name"]: v}, nil
}

func handleRemoveTarget(s *scheduler, req *request) (any, error) {
	a, err := stringArgs(req, "name")
	if err != nil {
		return nil, err
	}
	v, err := s.targets.remove(a["name"])
	if err != nil {
		return nil, err
	}
	return map[string]targetView{a["name"]: v}, nil
}

func handleReload(s *scheduler, req *request) (any, error) {
	if _, err := stringArgs(req); err != nil {
		return nil, err
	}
	s.log.Info("reload requested: server keys kept")
	return s.targets.reloadAll()
}
