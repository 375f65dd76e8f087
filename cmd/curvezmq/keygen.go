package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/curvezmq/curvezmq/keystore"
)

// keygen writes a CURVE key pair as pyzmq's zmq.auth.create_certificates does.
//
// Decisions: an existing NAME.key or NAME.key_secret is never overwritten without --force
// (the check is made before writing; each file is then replaced atomically, so a reader
// sees an old file or a new one, never a torn one); DIR is created, mode 0700, when it does
// not exist; NAME must be a plain file name that does not start with "." (pyzmq's loaders
// and ours skip dotfiles) and does not end in ".key" or ".key_secret" (the suffixes are
// added). Exit codes: 0 written, 1 anything else.

const keygenUsage = `usage: curvezmq keygen [--dir DIR] [--force] NAME

Writes a new CURVE key pair as DIR/NAME.key (the public certificate) and DIR/NAME.key_secret
(public and secret key), in pyzmq's certificate format with mode 0600, and prints the
public key (Z85) on standard output. An existing file is not overwritten without --force.

flags:
  --dir DIR   directory for the two files, created if missing (default: the current one)
  --force     overwrite existing files
`

func init() {
	register("keygen", command{
		summary: "write a key pair as NAME.key and NAME.key_secret (pyzmq's files)",
		run:     runKeygen,
	})
}

func runKeygen(e *env, args []string) int {
	flags := flag.NewFlagSet("keygen", flag.ContinueOnError)
	dir := flags.String("dir", ".", "")
	force := flags.Bool("force", false, "")
	failed := func(format string, a ...any) int {
		fmt.Fprintf(e.stderr, "curvezmq: keygen: "+format+"\n", a...)
		return 1
	}
	if code, ok := parseFlags(e, flags, keygenUsage, args); !ok {
		return code
	}
	if flags.NArg() != 1 {
		return usageError(e, "keygen", keygenUsage, "want one NAME, got %d arguments", flags.NArg())
	}
	name := flags.Arg(0)
	if err := checkKeyName(name); err != nil {
		return failed("%v", err)
	}
	if !*force {
		for _, p := range []string{filepath.Join(*dir, name+".key"), filepath.Join(*dir, name+".key_secret")} {
			if _, err := os.Lstat(p); err == nil {
				return failed("%s already exists (--force overwrites it)", p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return failed("%v", err)
			}
		}
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return failed("%v", err)
	}
	pubPath, _, err := keystore.CreateCertificates(*dir, name, nil)
	if err != nil {
		return failed("%v", err)
	}
	cert, err := keystore.ReadCertificate(pubPath)
	if err != nil {
		return failed("%v", err)
	}
	fmt.Fprintln(e.stdout, cert.Public)
	return 0
}

// checkKeyName accepts NAME for NAME.key and NAME.key_secret.
func checkKeyName(name string) error {
	switch {
	case name == "" || strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("NAME %q is not a plain file name", name)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("NAME %q starts with \".\": key loaders skip such files", name)
	case strings.HasSuffix(name, ".key") || strings.HasSuffix(name, ".key_secret"):
		return fmt.Errorf("NAME %q: give the name without the suffix (NAME.key and NAME.key_secret are written)", name)
	}
	return nil
}
