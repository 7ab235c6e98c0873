package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"plaza/internal/app"
	"plaza/internal/config"
	"plaza/internal/logbuf"
)

const gatewayUsage = `Usage: plaza gateway [--config FILE] [flags]

Serves the API gateway in front of the instances the registry lists (PLAZA_DISCOVERY;
Redis by default) on PLAZA_GATEWAY_ADDR and, for gRPC, PLAZA_GATEWAY_GRPC_ADDR, until
SIGINT or SIGTERM. SIGHUP reloads --config; a bad file keeps the running configuration.
`

const instancesUsage = `Usage: plaza instances [flags]

Lists the instances the registry (PLAZA_DISCOVERY; Redis by default) holds, with their
age and whether each answers /readyz.
`

func runGateway(ctx context.Context, rest []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	file := fs.String("config", "", "YAML file of routes, pools and balancing (default: every path to the registry's instances)")
	cfg, err := config.Load(fs, gatewayUsage, rest, getenv, stdout)
	if err != nil {
		return err
	}
	cfg.Version = version
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() {
		signal.Stop(hup)
		close(hup)
	}()
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default: // a reload is pending already
			}
		}
	}()
	logs := logbuf.New(stderr, 64<<10, logbuf.FlushInterval)
	defer logs.Close()
	return app.Gateway(ctx, cfg, *file, reload, newLogger(cfg, logs))
}

func runInstances(ctx context.Context, rest []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(flag.NewFlagSet("instances", flag.ContinueOnError), instancesUsage, rest, getenv, stdout)
	if err != nil {
		return err
	}
	return app.Instances(ctx, cfg, newLogger(cfg, stderr), stdout)
}
