package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/curvezmq/curvezmq/curve/key"
	"github.com/curvezmq/curvezmq/keystore"
	"github.com/curvezmq/curvezmq/rsyncx"
)

// fakeInstaller is an in-process installer whose steps the test decides.
type fakeInstaller struct {
	init func(ctx context.Context) (*rsyncx.InitResult, error)
	tidy func(ctx context.Context) error
}

func (f *fakeInstaller) Init(ctx context.Context, _ string, stdin io.Reader) (*rsyncx.InitResult, error) {
	io.Copy(io.Discard, stdin)
	return f.init(ctx)
}

func (f *fakeInstaller) Install(context.Context, string, string, rsyncx.LoadType) (*rsyncx.InstallResult, error) {
	return &rsyncx.InstallResult{Status: rsyncx.StatusInstallDone}, nil
}

func (f *fakeInstaller) Tidy(ctx context.Context, _ string) error { return f.tidy(ctx) }

// newFakeManager returns a target manager over a fresh run directory whose targets use
// the installers of insts.
func newFakeManager(t *testing.T, insts map[string]*fakeInstaller) *targetManager {
	t.Helper()
	runDir := t.TempDir()
	srv := keystore.ServiceDir(runDir)
	if err := os.MkdirAll(filepath.Join(srv, keystore.ClientPublicKeysDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(srv, keystore.ContactFileName), []byte("CYLC_API=5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &targetManager{
		id: "flow", runDir: runDir, srvDir: srv,
		log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		reload:       func() error { return nil },
		newInstaller: func(name, _ string) (installer, error) { return insts[name], nil },
		opts:         targetOptions{initTimeout: time.Minute, installTimeout: time.Minute, tidyTimeout: 2 * time.Second},
		targets:      map[string]*target{},
	}
}

// TestShutdownReportsEveryFailure: shutdown reports each failed tidy and each target whose
// steps outlived the wait, all of them, while the tidies run in parallel (the race
// detector watches the error list).
func TestShutdownReportsEveryFailure(t *testing.T) {
	t.Parallel()
	kp, err := key.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	cert := keystore.PublicCertificate(kp.Public, time.Now())
	kp.Wipe()
	release := make(chan struct{})
	defer close(release)
	insts := map[string]*fakeInstaller{
		// Its remote-init ignores cancellation for longer than stepStopWait.
		"stuck": {init: func(context.Context) (*rsyncx.InitResult, error) {
			<-release
			return &rsyncx.InitResult{Status: rsyncx.StatusInitFailed}, errors.New("late")
		}},
	}
	names := []string{"a1", "a2", "a3", "a4", "a5", "a6"}
	for _, n := range names {
		insts[n] = &fakeInstaller{
			init: func(context.Context) (*rsyncx.InitResult, error) {
				return &rsyncx.InitResult{Status: rsyncx.StatusInitDone, Cert: bytes.Clone(cert)}, nil
			},
			tidy: func(context.Context) error { return errors.New("tidy failed") },
		}
	}
	m := newFakeManager(t, insts)
	for n := range insts {
		if _, err := m.add(n, "h", rsyncx.LoadStart); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for done := 0; done < len(names); {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d targets installed", done, len(names))
		}
		time.Sleep(10 * time.Millisecond) // bounded poll of the targets' statuses
		done = 0
		for n, v := range m.list() {
			if n != "stuck" && v.Status == rsyncx.StatusInstallDone {
				done++
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = m.shutdown(ctx)
	if err == nil {
		t.Fatal("shutdown reported nothing")
	}
	msg := err.Error()
	if n := strings.Count(msg, "tidy failed"); n != len(names) {
		t.Errorf("%d tidy failures reported, want %d:\n%s", n, len(names), msg)
	}
	if !strings.Contains(msg, "target stuck: steps still running") {
		t.Errorf("the stuck target is not reported:\n%s", msg)
	}
}
