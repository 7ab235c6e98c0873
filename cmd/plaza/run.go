package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"plaza/internal/app"
	"plaza/internal/config"
	"plaza/internal/logbuf"
	"plaza/internal/logx"
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
  gateway   serve the API gateway in front of the instances: gateway [--config FILE]
  instances list the instances the registry holds
  version   print version, commit and Go version

Run 'plaza <command> --help' for the settings a command reads.
`

const serveUsage = `Usage: plaza [serve] [flags]

Serves the API until SIGINT or SIGTERM, then drains in-flight requests.
`

const migrateUsage = `Usage: plaza migrate up | down | status [flags]

Applies every pending migration (up), rolls the last one back (down), or lists them
(status), on the configured database.
`

// errUsage marks a command-line mistake; main exits 2 for it, as for a bad setting.
var errUsage = errors.New("usage")

// run is the whole program: main only supplies the process's context, arguments,
// environment and streams, so tests can run Plaza in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := runCommand(ctx, args, getenv, stdin, stdout, stderr)
	if errors.Is(err, config.ErrHelp) {
		// Help was printed; asking for it is not a failure.
		return nil
	}
	return err
}

func runCommand(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd, rest := "serve", args[1:]
	if len(rest) > 0 && (!strings.HasPrefix(rest[0], "-") || isHelp(rest[0])) {
		cmd, rest = rest[0], rest[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := config.Load(flag.NewFlagSet("serve", flag.ContinueOnError), serveUsage, rest, getenv, stdout)
		if err != nil {
			return err
		}
		// The access log writes a line per request: batch them (a write every 100 ms at
		// most, not one system call a line); Close writes the rest before run returns.
		cfg.Version = version
		logs := logbuf.New(stderr, 64<<10, logbuf.FlushInterval)
		defer logs.Close()
		return app.Serve(ctx, cfg, newLogger(cfg, logs))
	case "migrate":
		if len(rest) > 0 && isHelp(rest[0]) {
			fmt.Fprint(stdout, migrateUsage)
			return nil
		}
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprint(stderr, migrateUsage)
			return fmt.Errorf("%w: plaza migrate up | down | status", errUsage)
		}
		sub := rest[0]
		cfg, err := config.Load(flag.NewFlagSet("migrate "+sub, flag.ContinueOnError), migrateUsage, rest[1:], getenv, stdout)
		if err != nil {
			return err
		}
		return app.Migrate(ctx, cfg, newLogger(cfg, stderr), sub, stdout)
	case "seed":
		return runSeed(ctx, rest, getenv, stdout, stderr)
	case "user":
		return runUser(ctx, rest, getenv, stdin, stdout, stderr)
	case "gateway":
		return runGateway(ctx, rest, getenv, stdout, stderr)
	case "instances":
		return runInstances(ctx, rest, getenv, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "plaza %s\ncommit %s\n%s %s/%s\n", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// newLogger writes slog's JSON lines to w (plain ones, such as the access log's, through
// logx's shortcut); a warning or error repeating within a second is counted instead of
// written (logx.Limit), so a dependency outage cannot flood the log.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	return slog.New(logx.Limit(logx.NewJSONHandler(w, &slog.HandlerOptions{Level: cfg.LogLevel}), time.Second))
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
