package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"

	"plaza/internal/app"
	"plaza/internal/config"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = ""
)

const usage = `Usage: plaza [command] [flags]

Commands:
  serve     serve the API (the default)
  migrate   apply or inspect database migrations: migrate up | down | status
  seed      add generated products: seed --products N
  user      manage users: user create --email … --name … [--admin] | user list
  version   print version, commit and Go version

Run 'plaza <command> --help' for the settings a command reads.
`

// errUsage marks a command-line mistake; main exits 2 for it, as for a bad setting.
var errUsage = errors.New("usage")

// run is the whole program: main only supplies the process's context, arguments,
// environment and streams, so tests can run Plaza in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := runCommand(ctx, args, getenv, stdin, stdout, stderr)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

func runCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, rest := "serve", args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		cmd, rest = rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := loadConfig("serve", rest, getenv, stdout)
		if err != nil {
			return err
		}
		return app.Serve(ctx, cfg, newLogger(cfg, stderr))
	case "migrate":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return fmt.Errorf("%w: plaza migrate up | down | status", errUsage)
		}
		sub := rest[0]
		cfg, err := loadConfig("migrate "+sub, rest[1:], getenv, stdout)
		if err != nil {
			return err
		}
		return app.Migrate(ctx, cfg, newLogger(cfg, stderr), sub, stdout)
	case "seed":
		return runSeed(ctx, rest, getenv, stdout, stderr)
	case "user":
		return runUser(ctx, rest, getenv, stdin, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "plaza %s\ncommit %s\n%s %s/%s\n", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

func loadConfig(name string, args []string, getenv func(string) string, stdout io.Writer) (config.Config, error) {
	cfg, err := config.Load(name, args, getenv, stdout)
	if errors.Is(err, config.ErrHelp) {
		return cfg, errHelpShown
	}
	return cfg, err
}

// errHelpShown ends a command after --help printed its usage; it is not a failure.
var errHelpShown = errors.New("help shown")

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: cfg.LogLevel}))
}

func buildCommit() string {
	if commit != "" {
		return commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// exitCode is 2 for configuration and usage mistakes, 1 for everything else.
func exitCode(err error) int {
	var cerr *config.Error
	if errors.As(err, &cerr) || errors.Is(err, errUsage) {
		return 2
	}
	return 1
}
