// Command curvezmq is the one static binary of the project: key generation, a Cylc-shaped
// scheduler and its client, the remote side of install targets (remote-init, remote-tidy),
// a self-contained demo and benchmarks.
//
// A command's flags come after its word and before its arguments (Go's flag package
// stops at the first argument that is not a flag); --flag and -flag are the same:
//
//	curvezmq COMMAND [flags] [args]
//
//	curvezmq keygen [--dir DIR] [--force] NAME
//	curvezmq scheduler [--run-dir DIR] [--id ID] [--host HOST] [--ports MIN-MAX]
//	                   [--target NAME=HOST]... [--remote-command PATH] [--ssh COMMAND]
//	                   [--login-shell] [--install-binary DIR] [--init-timeout T]
//	                   [--install-timeout T] [--tidy-timeout T]
//	curvezmq client [--run-dir DIR | --id ID] [--timeout T] [--raw JSON] COMMAND [NAME=VALUE]...
//	curvezmq remote-init TARGET RUN_DIR
//	curvezmq remote-tidy TARGET RUN_DIR
//	curvezmq demo [--keep]
//	curvezmq version
//
// "curvezmq help" lists the commands, "curvezmq COMMAND -h" describes one. Each command
// lives in its own file, whose comments give its decisions and exit codes, and registers
// itself in init.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// env is what a command may touch of the process; tests run commands in-process with their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one word of the command line.
type command struct {
	summary string
	// run executes the command with the arguments after the command word and returns the
	// process exit code.
	run func(e *env, args []string) int
}

var commands = map[string]command{}

func register(name string, c command) {
	if _, dup := commands[name]; dup {
		panic("curvezmq: command registered twice: " + name)
	}
	commands[name] = c
}

// parseFlags parses a command's flags, which come before its arguments. On -h or --help
// it prints usage on stdout; on a bad flag it prints the error and usage on stderr. When ok
// is false the command returns code (0 after help, 1 after an error).
func parseFlags(e *env, fs *flag.FlagSet, usage string, args []string) (code int, ok bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(e.stdout, usage)
			return 0, false
		}
		return usageError(e, fs.Name(), usage, "%v", err), false
	}
	return 0, true
}

// usageError reports a command line problem of command name, prints its usage and
// returns exit code 1.
func usageError(e *env, name, usage, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "curvezmq: %s: %s\n%s", name, fmt.Sprintf(format, args...), usage)
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: curvezmq COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
}

// dispatch runs the command named by args[0] and returns the exit code.
func dispatch(e *env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 1
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(e.stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "curvezmq: unknown command %q\n", args[0])
		usage(e.stderr)
		return 1
	}
	return c.run(e, args[1:])
}

func main() {
	os.Exit(dispatch(&env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:]))
}
